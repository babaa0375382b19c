// Element-wise kernels: bias + activation (fused), activation backward, adds, scaling, column
// sums and column-block copies. ACT is LOOM's activation id: 0 ScaledReLU (1.1x), 1 sigmoid,
// 2 tanh, 3 softplus, 4 leaky_relu (0.1), 5 linear. 1-D entries take the linear index
// (wg.y * num_workgroups.x + wg.x) * 256 + lid.x (Stream.groups).

override ACT: u32 = 5u;

struct N { n: u32 }
struct NC { n: u32, cols: u32 }
struct NS { n: u32, s: f32 }
struct RC { rows: u32, cols: u32, accumulate: u32 }
struct Block { rows: u32, cols: u32, src_cols: u32, src_off: u32, dst_cols: u32, dst_off: u32,
               accumulate: u32 }

fn linear(wg: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wg.y * nwg.x + wg.x) * 256u + lid.x;
}

fn sigmoid(v: f32) -> f32 {
    let e = exp(-abs(v));  // <= 1: never overflows
    let s = 1.0 / (1.0 + e);
    return select(e * s, s, v >= 0.0);
}

fn act(v: f32) -> f32 {
    switch ACT {
        case 0u: { return max(v * 1.1, 0.0); }
        case 1u: { return sigmoid(v); }
        case 2u: {
            let e = exp(-2.0 * abs(v));
            let t = (1.0 - e) / (1.0 + e);
            return select(-t, t, v >= 0.0);
        }
        case 3u: { return max(v, 0.0) + log(1.0 + exp(-abs(v))); }
        case 4u: { return select(v * 0.1, v, v >= 0.0); }
        default: { return v; }
    }
}

fn act_grad(z: f32, y: f32) -> f32 {
    switch ACT {
        case 0u: { return select(0.0, 1.1, z > 0.0); }
        case 1u: { return y * (1.0 - y); }
        case 2u: { return 1.0 - y * y; }
        case 3u: { return sigmoid(z); }
        case 4u: { return select(0.1, 1.0, z >= 0.0); }
        default: { return 1.0; }
    }
}

// bias_act: Z (rows, cols) += bias (per column); Y = act(Z).
@group(0) @binding(0) var<storage, read_write> z_ba: array<f32>;
@group(0) @binding(1) var<storage, read> bias_ba: array<f32>;
@group(0) @binding(2) var<storage, read_write> y_ba: array<f32>;
@group(0) @binding(3) var<uniform> p_ba: NC;

@compute @workgroup_size(256)
fn bias_act(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear(wg, nwg, lid);
    if (i >= p_ba.n) { return; }
    let v = z_ba[i] + bias_ba[i % p_ba.cols];
    z_ba[i] = v;
    y_ba[i] = act(v);
}

// act_backward: DZ = DY * act'(Z, Y).
@group(0) @binding(0) var<storage, read> z_ab: array<f32>;
@group(0) @binding(1) var<storage, read> y_ab: array<f32>;
@group(0) @binding(2) var<storage, read> dy_ab: array<f32>;
@group(0) @binding(3) var<storage, read_write> dz_ab: array<f32>;
@group(0) @binding(4) var<uniform> p_ab: N;

@compute @workgroup_size(256)
fn act_backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear(wg, nwg, lid);
    if (i >= p_ab.n) { return; }
    if (ACT == 5u) { dz_ab[i] = dy_ab[i]; return; }
    dz_ab[i] = dy_ab[i] * act_grad(z_ab[i], y_ab[i]);
}

// add_into: D += S.
@group(0) @binding(0) var<storage, read> s_ai: array<f32>;
@group(0) @binding(1) var<storage, read_write> d_ai: array<f32>;
@group(0) @binding(2) var<uniform> p_ai: N;

@compute @workgroup_size(256)
fn add_into(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear(wg, nwg, lid);
    if (i < p_ai.n) { d_ai[i] = d_ai[i] + s_ai[i]; }
}

// add: O = A + B.
@group(0) @binding(0) var<storage, read> a_ad: array<f32>;
@group(0) @binding(1) var<storage, read> b_ad: array<f32>;
@group(0) @binding(2) var<storage, read_write> o_ad: array<f32>;
@group(0) @binding(3) var<uniform> p_ad: N;

@compute @workgroup_size(256)
fn add(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear(wg, nwg, lid);
    if (i < p_ad.n) { o_ad[i] = a_ad[i] + b_ad[i]; }
}

// scale: D *= s.
@group(0) @binding(0) var<storage, read_write> d_sc: array<f32>;
@group(0) @binding(1) var<uniform> p_sc: NS;

@compute @workgroup_size(256)
fn scale(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear(wg, nwg, lid);
    if (i < p_sc.n) { d_sc[i] = d_sc[i] * p_sc.s; }
}

// colsum: O[j] (+)= sum_r X[r, j], one thread per column.
@group(0) @binding(0) var<storage, read> x_cs: array<f32>;
@group(0) @binding(1) var<storage, read_write> o_cs: array<f32>;
@group(0) @binding(2) var<uniform> p_cs: RC;

@compute @workgroup_size(256)
fn colsum(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_id) lid: vec3<u32>) {
    let j = linear(wg, nwg, lid);
    if (j >= p_cs.cols) { return; }
    var s = 0.0;
    for (var r = 0u; r < p_cs.rows; r++) { s += x_cs[r * p_cs.cols + j]; }
    if (p_cs.accumulate != 0u) { s += o_cs[j]; }
    o_cs[j] = s;
}

// colsum_partial: P[c, j] = sum of X[r, j] over the rows of chunk c (two-pass column sums).
struct Chunks { rows: u32, cols: u32, chunk: u32 }
@group(0) @binding(0) var<storage, read> x_cp: array<f32>;
@group(0) @binding(1) var<storage, read_write> p_cp: array<f32>;
@group(0) @binding(2) var<uniform> u_cp: Chunks;

@compute @workgroup_size(64)
fn colsum_partial(@builtin(global_invocation_id) gid: vec3<u32>,
                  @builtin(workgroup_id) wg: vec3<u32>) {
    let j = gid.x;
    if (j >= u_cp.cols) { return; }
    let c = wg.y;
    let end = min(u_cp.rows, (c + 1u) * u_cp.chunk);
    var s = 0.0;
    for (var r = c * u_cp.chunk; r < end; r++) { s += x_cp[r * u_cp.cols + j]; }
    p_cp[c * u_cp.cols + j] = s;
}

// copy_cols: DST[r, dst_off + j] (+)= SRC[r, src_off + j] for j < cols.
@group(0) @binding(0) var<storage, read> s_cc: array<f32>;
@group(0) @binding(1) var<storage, read_write> d_cc: array<f32>;
@group(0) @binding(2) var<uniform> p_cc: Block;

@compute @workgroup_size(256)
fn copy_cols(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear(wg, nwg, lid);
    if (i >= p_cc.rows * p_cc.cols) { return; }
    let r = i / p_cc.cols;
    let j = i % p_cc.cols;
    let d = r * p_cc.dst_cols + p_cc.dst_off + j;
    var v = s_cc[r * p_cc.src_cols + p_cc.src_off + j];
    if (p_cc.accumulate != 0u) { v += d_cc[d]; }
    d_cc[d] = v;
}
