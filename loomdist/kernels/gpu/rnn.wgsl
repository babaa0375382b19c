// Elman RNN time steps, forward and BPTT, and the recurrent weight gradient (RNN and LSTM).
// States are (batch, seq, H) row-major; xw = x W_ih^T comes from the tiled GEMM. One dispatch
// per time step, one invocation per (b, j) hidden unit; the recurrent product is fused into
// the step. Each entry point declares its own bindings: arrays 0..k-1 in the wrapper's order,
// then the uniform; 2-D dispatch past 65535 workgroups.

const WG: u32 = 64u;

struct Step { nb: u32, seq: u32, h: u32, t: u32 }
struct Outer { nb: u32, seq: u32, g: u32, h: u32 }

fn flat(gid: vec3<u32>, nwg: vec3<u32>) -> u32 { return gid.x + gid.y * nwg.x * WG; }

fn tanh_safe(v: f32) -> f32 { return tanh(clamp(v, -15.0, 15.0)); }  // tanh(15) rounds to 1

// ------------------------------ h_t = tanh(xw_t + b + W_hh h_{t-1}), written into y[:, t]
@group(0) @binding(0) var<storage, read> rf_xw: array<f32>;
@group(0) @binding(1) var<storage, read> rf_whh: array<f32>;  // (H, H)
@group(0) @binding(2) var<storage, read> rf_b: array<f32>;
@group(0) @binding(3) var<storage, read_write> rf_y: array<f32>;
@group(0) @binding(4) var<uniform> rf_s: Step;

@compute @workgroup_size(64)
fn rnn_step(@builtin(global_invocation_id) gid: vec3<u32>,
            @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = flat(gid, nwg);  // e = b*H + j
    let h = rf_s.h;
    if (e >= rf_s.nb * h) { return; }
    let b = e / h;
    let j = e % h;
    let row = (b * rf_s.seq + rf_s.t) * h;
    var z = rf_xw[row + j] + rf_b[j];
    if (rf_s.t > 0u) {
        let prev = row - h;
        for (var k = 0u; k < h; k++) { z += rf_whh[j * h + k] * rf_y[prev + k]; }
    }
    rf_y[row + j] = tanh_safe(z);
}

// ------------------- dz_t = (dy_t + dz_{t+1} W_hh) * (1 - h_t^2), into dz[:, t] (BPTT step)
@group(0) @binding(0) var<storage, read> rb_dy: array<f32>;
@group(0) @binding(1) var<storage, read> rb_y: array<f32>;
@group(0) @binding(2) var<storage, read> rb_whh: array<f32>;
@group(0) @binding(3) var<storage, read_write> rb_dz: array<f32>;
@group(0) @binding(4) var<uniform> rb_s: Step;

@compute @workgroup_size(64)
fn rnn_step_back(@builtin(global_invocation_id) gid: vec3<u32>,
                 @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = flat(gid, nwg);
    let h = rb_s.h;
    if (e >= rb_s.nb * h) { return; }
    let b = e / h;
    let j = e % h;
    let row = (b * rb_s.seq + rb_s.t) * h;
    var dh = rb_dy[row + j];
    if (rb_s.t + 1u < rb_s.seq) {
        let next = row + h;
        for (var k = 0u; k < h; k++) { dh += rb_dz[next + k] * rb_whh[k * h + j]; }
    }
    let y = rb_y[row + j];
    rb_dz[row + j] = dh * (1.0 - y * y);
}

// ---------- dW_hh[i, k] = sum over b and t >= 1 of dz[b, t, i] * y[b, t-1, k]; dz has G cols
@group(0) @binding(0) var<storage, read> so_dz: array<f32>;  // (batch, seq, G)
@group(0) @binding(1) var<storage, read> so_y: array<f32>;   // (batch, seq, H)
@group(0) @binding(2) var<storage, read_write> so_out: array<f32>;  // (G, H)
@group(0) @binding(3) var<uniform> so_s: Outer;

@compute @workgroup_size(64)
fn shifted_outer(@builtin(global_invocation_id) gid: vec3<u32>,
                 @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = flat(gid, nwg);
    if (e >= so_s.g * so_s.h) { return; }
    let i = e / so_s.h;
    let k = e % so_s.h;
    var acc = 0.0;
    for (var b = 0u; b < so_s.nb; b++) {
        for (var t = 1u; t < so_s.seq; t++) {
            let r = b * so_s.seq + t;
            acc += so_dz[r * so_s.g + i] * so_y[(r - 1u) * so_s.h + k];
        }
    }
    so_out[e] = acc;
}
