// Elman RNN over whole sequences, forward and BPTT, plus the shifted states of the recurrent
// weight gradient and a transpose (RNN and LSTM).
// States are (batch, seq, H) row-major; xw = x W_ih^T comes from the tiled GEMM. The
// recurrence couples the hidden units of one sample only, so one workgroup walks one sample's
// time steps in a loop (units j strided over its 256 invocations, a storage barrier between
// steps): the whole sequence is one dispatch. Each entry point declares its own bindings:
// arrays 0..k-1 in the wrapper's order, then the uniform; 2-D dispatch past 65535 workgroups.

const WG: u32 = 64u;
const SEQ_WG: u32 = 256u;  // invocations of the sequence entry points (one sample each)

struct Step { nb: u32, seq: u32, h: u32, t: u32 }

fn flat(gid: vec3<u32>, nwg: vec3<u32>) -> u32 { return gid.x + gid.y * nwg.x * WG; }

fn sample_of(wg: vec3<u32>, nwg: vec3<u32>) -> u32 { return wg.x + wg.y * nwg.x; }

fn tanh_safe(v: f32) -> f32 { return tanh(clamp(v, -15.0, 15.0)); }  // tanh(15) rounds to 1

// --------------------------- h_t = tanh(xw_t + b + W_hh h_{t-1}) for t = 0 .. seq-1, into y
@group(0) @binding(0) var<storage, read> rf_xw: array<f32>;
@group(0) @binding(1) var<storage, read> rf_wt: array<f32>;  // W_hh^T (H, H): coalesced in j
@group(0) @binding(2) var<storage, read> rf_b: array<f32>;
@group(0) @binding(3) var<storage, read_write> rf_y: array<f32>;
@group(0) @binding(4) var<uniform> rf_s: Step;

@compute @workgroup_size(256)
fn rnn_seq(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_id) li: vec3<u32>) {
    let b = sample_of(wg, nwg);
    if (b >= rf_s.nb) { return; }
    let h = rf_s.h;
    for (var t = 0u; t < rf_s.seq; t++) {
        let row = (b * rf_s.seq + t) * h;
        for (var j = li.x; j < h; j += SEQ_WG) {
            var z = rf_xw[row + j] + rf_b[j];
            if (t > 0u) {
                for (var k = 0u; k < h; k++) { z += rf_wt[k * h + j] * rf_y[row - h + k]; }
            }
            rf_y[row + j] = tanh_safe(z);
        }
        storageBarrier();  // h_t complete before step t+1 reads it
    }
}

// ---------------- dz_t = (dy_t + dz_{t+1} W_hh) * (1 - h_t^2) for t = seq-1 .. 0 (BPTT)
@group(0) @binding(0) var<storage, read> rb_dy: array<f32>;
@group(0) @binding(1) var<storage, read> rb_y: array<f32>;
@group(0) @binding(2) var<storage, read> rb_whh: array<f32>;
@group(0) @binding(3) var<storage, read_write> rb_dz: array<f32>;
@group(0) @binding(4) var<uniform> rb_s: Step;

@compute @workgroup_size(256)
fn rnn_seq_back(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) li: vec3<u32>) {
    let b = sample_of(wg, nwg);
    if (b >= rb_s.nb) { return; }
    let h = rb_s.h;
    for (var n = 0u; n < rb_s.seq; n++) {
        let t = rb_s.seq - 1u - n;
        let row = (b * rb_s.seq + t) * h;
        for (var j = li.x; j < h; j += SEQ_WG) {
            var dh = rb_dy[row + j];
            if (t + 1u < rb_s.seq) {
                for (var k = 0u; k < h; k++) { dh += rb_dz[row + h + k] * rb_whh[k * h + j]; }
            }
            let y = rb_y[row + j];
            rb_dz[row + j] = dh * (1.0 - y * y);
        }
        storageBarrier();  // dz_t complete before step t-1 reads it
    }
}

// ------------- y_prev[r] = y[r - 1] for a step t >= 1 of row r = b*seq + t, 0 at t = 0
// (the h_{t-1} rows, so dW_hh = dz^T @ y_prev is one tiled GEMM over every step)
@group(0) @binding(0) var<storage, read> sh_y: array<f32>;  // (batch, seq, H)
@group(0) @binding(1) var<storage, read_write> sh_out: array<f32>;
@group(0) @binding(2) var<uniform> sh_s: Step;

@compute @workgroup_size(64)
fn shift_rows(@builtin(global_invocation_id) gid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = flat(gid, nwg);
    let h = sh_s.h;
    if (e >= sh_s.nb * sh_s.seq * h) { return; }
    let r = e / h;
    var v = 0.0;
    if (r % sh_s.seq != 0u) { v = sh_y[e - h]; }
    sh_out[e] = v;
}

// ------------------------------------------- out (cols, rows) = a (rows, cols) transposed
@group(0) @binding(0) var<storage, read> tr_a: array<f32>;
@group(0) @binding(1) var<storage, read_write> tr_out: array<f32>;
@group(0) @binding(2) var<uniform> tr_s: Step;  // nb = rows, h = cols

@compute @workgroup_size(64)
fn transpose(@builtin(global_invocation_id) gid: vec3<u32>,
             @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = flat(gid, nwg);  // e = c * rows + r, the output index
    if (e >= tr_s.nb * tr_s.h) { return; }
    let r = e % tr_s.nb;
    let c = e / tr_s.nb;
    tr_out[e] = tr_a[r * tr_s.h + c];
}
