// LSTM over whole sequences, forward and BPTT; gate blocks stacked [i | f | g | o] along 4H.
// States y, c are (batch, seq, H); gates and dz are (batch, seq, 4H). As in rnn.wgsl, one
// workgroup walks one sample's time steps in a loop (units j strided over its 256
// invocations, a storage barrier between steps), so a sequence is one dispatch. Each entry
// point declares its own bindings: arrays 0..k-1 in the wrapper's order, then the uniform;
// 2-D dispatch past 65535 workgroups.

const SEQ_WG: u32 = 256u;

struct Step { nb: u32, seq: u32, h: u32, t: u32 }

fn sample_of(wg: vec3<u32>, nwg: vec3<u32>) -> u32 { return wg.x + wg.y * nwg.x; }

fn tanh_safe(v: f32) -> f32 { return tanh(clamp(v, -15.0, 15.0)); }  // tanh(15) rounds to 1

fn sigmoid(v: f32) -> f32 {
    let e = exp(-abs(v));  // <= 1: no overflow on either side
    return select(e / (1.0 + e), 1.0 / (1.0 + e), v >= 0.0);
}

// gates[:, t] holds x W_ih^T on entry and the activated gates on exit;
// c_t = f c_{t-1} + i g, h_t = o tanh(c_t)
@group(0) @binding(0) var<storage, read_write> lf_gates: array<f32>;
@group(0) @binding(1) var<storage, read> lf_wt: array<f32>;  // W_hh^T (H, 4H): coalesced
@group(0) @binding(2) var<storage, read> lf_b: array<f32>;    // (4H,)
@group(0) @binding(3) var<storage, read_write> lf_c: array<f32>;
@group(0) @binding(4) var<storage, read_write> lf_y: array<f32>;
@group(0) @binding(5) var<uniform> lf_s: Step;

fn gate_pre(row4: u32, prev: u32, q: u32, t: u32) -> f32 {
    let h = lf_s.h;
    var v = lf_gates[row4 + q] + lf_b[q];
    if (t > 0u) {
        for (var k = 0u; k < h; k++) { v += lf_wt[k * 4u * h + q] * lf_y[prev + k]; }
    }
    return v;
}

fn lstm_unit(b: u32, t: u32, j: u32) {
    let h = lf_s.h;
    let r = b * lf_s.seq + t;
    let row4 = r * 4u * h;
    let prev = (r - select(0u, 1u, t > 0u)) * h;  // row of h_{t-1} (unused at t = 0)
    let i = sigmoid(gate_pre(row4, prev, j, t));
    let f = sigmoid(gate_pre(row4, prev, h + j, t));
    let g = tanh_safe(gate_pre(row4, prev, 2u * h + j, t));
    let o = sigmoid(gate_pre(row4, prev, 3u * h + j, t));
    var cprev = 0.0;
    if (t > 0u) { cprev = lf_c[prev + j]; }
    let c = i * g + f * cprev;
    lf_gates[row4 + j] = i;
    lf_gates[row4 + h + j] = f;
    lf_gates[row4 + 2u * h + j] = g;
    lf_gates[row4 + 3u * h + j] = o;
    lf_c[r * h + j] = c;
    lf_y[r * h + j] = o * tanh_safe(c);
}

@compute @workgroup_size(256)
fn lstm_seq(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_id) li: vec3<u32>) {
    let b = sample_of(wg, nwg);
    if (b >= lf_s.nb) { return; }
    for (var t = 0u; t < lf_s.seq; t++) {
        for (var j = li.x; j < lf_s.h; j += SEQ_WG) { lstm_unit(b, t, j); }
        storageBarrier();  // h_t complete before step t+1 reads it
    }
}

// BPTT step t: dh = dy_t + dz_{t+1} W_hh, dc_t = dc_{t+1} f_{t+1} + dh o (1 - tanh(c_t)^2),
// then the four gate pre-activation gradients into dz[:, t] and dc_t into dc[:, t].
@group(0) @binding(0) var<storage, read> lb_dy: array<f32>;
@group(0) @binding(1) var<storage, read> lb_gates: array<f32>;
@group(0) @binding(2) var<storage, read> lb_c: array<f32>;
@group(0) @binding(3) var<storage, read> lb_whh: array<f32>;
@group(0) @binding(4) var<storage, read_write> lb_dz: array<f32>;
@group(0) @binding(5) var<storage, read_write> lb_dc: array<f32>;
@group(0) @binding(6) var<uniform> lb_s: Step;

fn lstm_unit_back(b: u32, t: u32, j: u32) {
    let h = lb_s.h;
    let r = b * lb_s.seq + t;
    let row4 = r * 4u * h;
    var dh = lb_dy[r * h + j];
    var dcn = 0.0;
    if (t + 1u < lb_s.seq) {
        let next4 = row4 + 4u * h;
        for (var k = 0u; k < 4u * h; k++) { dh += lb_dz[next4 + k] * lb_whh[k * h + j]; }
        dcn = lb_dc[(r + 1u) * h + j] * lb_gates[next4 + h + j];
    }
    let i = lb_gates[row4 + j];
    let f = lb_gates[row4 + h + j];
    let u = lb_gates[row4 + 2u * h + j];
    let o = lb_gates[row4 + 3u * h + j];
    let tc = tanh_safe(lb_c[r * h + j]);
    var cp = 0.0;
    if (t > 0u) { cp = lb_c[(r - 1u) * h + j]; }
    let dc = dcn + dh * o * (1.0 - tc * tc);
    lb_dz[row4 + j] = dc * u * i * (1.0 - i);
    lb_dz[row4 + h + j] = dc * cp * f * (1.0 - f);
    lb_dz[row4 + 2u * h + j] = dc * i * (1.0 - u * u);
    lb_dz[row4 + 3u * h + j] = dh * tc * o * (1.0 - o);
    lb_dc[r * h + j] = dc;
}

@compute @workgroup_size(256)
fn lstm_seq_back(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_id) li: vec3<u32>) {
    let b = sample_of(wg, nwg);
    if (b >= lb_s.nb) { return; }
    for (var n = 0u; n < lb_s.seq; n++) {
        let t = lb_s.seq - 1u - n;
        for (var j = li.x; j < lb_s.h; j += SEQ_WG) { lstm_unit_back(b, t, j); }
        storageBarrier();  // dz_t and dc_t complete before step t-1 reads them
    }
}
