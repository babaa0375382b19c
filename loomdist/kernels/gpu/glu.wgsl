// SwiGLU's gate, forward and backward: h = silu(a + bg) * (u + bu), silu(g) = g * sigmoid(g).
// A and U (rows, m) receive their biases in place (backward reads them back).

struct NC { n: u32, cols: u32 }

fn sigmoid(v: f32) -> f32 {
    let e = exp(-abs(v));
    let s = 1.0 / (1.0 + e);
    return select(e * s, s, v >= 0.0);
}

fn linear(wg: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wg.y * nwg.x + wg.x) * 256u + lid.x;
}

@group(0) @binding(0) var<storage, read_write> a_f: array<f32>;
@group(0) @binding(1) var<storage, read_write> u_f: array<f32>;
@group(0) @binding(2) var<storage, read> bg_f: array<f32>;
@group(0) @binding(3) var<storage, read> bu_f: array<f32>;
@group(0) @binding(4) var<storage, read_write> h_f: array<f32>;
@group(0) @binding(5) var<uniform> p_f: NC;

@compute @workgroup_size(256)
fn glu_forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear(wg, nwg, lid);
    if (i >= p_f.n) { return; }
    let j = i % p_f.cols;
    let g = a_f[i] + bg_f[j];
    let v = u_f[i] + bu_f[j];
    a_f[i] = g;
    u_f[i] = v;
    h_f[i] = g * sigmoid(g) * v;
}

// DH (rows, m) in: dL/dh; out: DG = dL/d(gate pre-activation), DU = dL/d(up).
@group(0) @binding(0) var<storage, read> a_b: array<f32>;
@group(0) @binding(1) var<storage, read> u_b: array<f32>;
@group(0) @binding(2) var<storage, read> dh_b: array<f32>;
@group(0) @binding(3) var<storage, read_write> dg_b: array<f32>;
@group(0) @binding(4) var<storage, read_write> du_b: array<f32>;
@group(0) @binding(5) var<uniform> p_b: NC;

@compute @workgroup_size(256)
fn glu_backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear(wg, nwg, lid);
    if (i >= p_b.n) { return; }
    let g = a_b[i];
    let s = sigmoid(g);
    let d = dh_b[i];
    du_b[i] = d * g * s;
    dg_b[i] = d * u_b[i] * (s + g * (s - s * s));  // silu' = s (1 + g (1 - s))
}
