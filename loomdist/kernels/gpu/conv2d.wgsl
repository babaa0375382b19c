// Conv2D around the tiled GEMM: im2col, fused bias + activation, its backward, col2im.
// Layouts are LOOM's NCHW: x (n, C, H, W), y and z (n, F, oh, ow), kernel (F, C*k*k).
// Columns are batch-wide, cols (C*k*k, n*P) with P = oh*ow, row (c*k + ki)*k + kj and
// column b*P + p, so one GEMM W (F, C*k*k) @ cols gives z^T (F, n*P) for the whole batch.
// ACT is LOOM's activation id (0 relu=1.1x, 1 sigmoid, 2 tanh, 3 softplus, 4 leaky, 5 linear).
// Each entry point declares its own bindings: arrays 0..k-1 in the wrapper's order, then the
// uniform. One invocation per output element; 2-D dispatch past 65535 workgroups.

override ACT: u32 = 5u;
const WG: u32 = 64u;

struct Geo {
    n: u32, c: u32, h: u32, w: u32,
    f: u32, k: u32, stride: u32, pad: u32,
    oh: u32, ow: u32, p0: u32, p1: u32,
}

fn flat(gid: vec3<u32>, nwg: vec3<u32>) -> u32 { return gid.x + gid.y * nwg.x * WG; }

fn sigmoid(v: f32) -> f32 {
    let e = exp(-abs(v));  // <= 1: no overflow on either side
    return select(e / (1.0 + e), 1.0 / (1.0 + e), v >= 0.0);
}

fn act(v: f32) -> f32 {
    switch ACT {
        case 0u: { return max(1.1 * v, 0.0); }
        case 1u: { return sigmoid(v); }
        case 2u: { return tanh(clamp(v, -15.0, 15.0)); }  // tanh(15) rounds to 1
        case 3u: { return max(v, 0.0) + log(1.0 + exp(-abs(v))); }
        case 4u: { return select(0.1 * v, v, v >= 0.0); }
        default: { return v; }
    }
}

// d act / d z at pre-activation z with output y
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

// ------------------------------------------------------------ im2col: x -> cols (K, n*P)
@group(0) @binding(0) var<storage, read> ic_x: array<f32>;
@group(0) @binding(1) var<storage, read_write> ic_cols: array<f32>;
@group(0) @binding(2) var<uniform> ic_g: Geo;

@compute @workgroup_size(64)
fn im2col(@builtin(global_invocation_id) gid: vec3<u32>,
          @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = flat(gid, nwg);
    let np = ic_g.n * ic_g.oh * ic_g.ow;
    if (e >= ic_g.c * ic_g.k * ic_g.k * np) { return; }
    let row = e / np;
    let col = e % np;
    let b = col / (ic_g.oh * ic_g.ow);
    let p = col % (ic_g.oh * ic_g.ow);
    let kj = row % ic_g.k;
    let ki = (row / ic_g.k) % ic_g.k;
    let c = row / (ic_g.k * ic_g.k);
    let iy = i32((p / ic_g.ow) * ic_g.stride + ki) - i32(ic_g.pad);
    let ix = i32((p % ic_g.ow) * ic_g.stride + kj) - i32(ic_g.pad);
    var v = 0.0;
    if (iy >= 0 && iy < i32(ic_g.h) && ix >= 0 && ix < i32(ic_g.w)) {
        v = ic_x[((b * ic_g.c + c) * ic_g.h + u32(iy)) * ic_g.w + u32(ix)];
    }
    ic_cols[e] = v;
}

// -------------------------------------- z = z^T[f, b*P + p] + bias[f], y = act(z), NCHW out
@group(0) @binding(0) var<storage, read> ba_zt: array<f32>;
@group(0) @binding(1) var<storage, read> ba_bias: array<f32>;
@group(0) @binding(2) var<storage, read_write> ba_z: array<f32>;
@group(0) @binding(3) var<storage, read_write> ba_y: array<f32>;
@group(0) @binding(4) var<uniform> ba_g: Geo;

@compute @workgroup_size(64)
fn bias_act(@builtin(global_invocation_id) gid: vec3<u32>,
            @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = flat(gid, nwg);  // e = (b*F + f)*P + p
    let pp = ba_g.oh * ba_g.ow;
    if (e >= ba_g.n * ba_g.f * pp) { return; }
    let p = e % pp;
    let f = (e / pp) % ba_g.f;
    let b = e / (pp * ba_g.f);
    let z = ba_zt[f * ba_g.n * pp + b * pp + p] + ba_bias[f];
    ba_z[e] = z;
    ba_y[e] = act(z);
}

// --------------------- dz[b*P + p, f] = dy[b, f, p] * act'(z, y): (n*P, F), GEMM-ready
@group(0) @binding(0) var<storage, read> ab_z: array<f32>;
@group(0) @binding(1) var<storage, read> ab_y: array<f32>;
@group(0) @binding(2) var<storage, read> ab_dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> ab_dz: array<f32>;
@group(0) @binding(4) var<uniform> ab_g: Geo;

@compute @workgroup_size(64)
fn act_back(@builtin(global_invocation_id) gid: vec3<u32>,
            @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = flat(gid, nwg);  // e = (b*F + f)*P + p, the NCHW index of dy
    let pp = ab_g.oh * ab_g.ow;
    if (e >= ab_g.n * ab_g.f * pp) { return; }
    let p = e % pp;
    let f = (e / pp) % ab_g.f;
    let b = e / (pp * ab_g.f);
    ab_dz[(b * pp + p) * ab_g.f + f] = ab_dy[e] * act_grad(ab_z[e], ab_y[e]);
}

// ---------------------- col2im: dx[b, c, iy, ix] = sum of the dcols entries that read it
// A gather (one invocation per input element), so no atomics: oy*stride = iy + pad - ki.
@group(0) @binding(0) var<storage, read> ci_dcols: array<f32>;
@group(0) @binding(1) var<storage, read_write> ci_dx: array<f32>;
@group(0) @binding(2) var<uniform> ci_g: Geo;

@compute @workgroup_size(64)
fn col2im(@builtin(global_invocation_id) gid: vec3<u32>,
          @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = flat(gid, nwg);  // e = ((b*C + c)*H + iy)*W + ix
    if (e >= ci_g.n * ci_g.c * ci_g.h * ci_g.w) { return; }
    let ix = i32(e % ci_g.w);
    let iy = i32((e / ci_g.w) % ci_g.h);
    let c = (e / (ci_g.w * ci_g.h)) % ci_g.c;
    let b = e / (ci_g.w * ci_g.h * ci_g.c);
    let np = ci_g.n * ci_g.oh * ci_g.ow;
    let s = i32(ci_g.stride);
    var acc = 0.0;
    for (var ki = 0u; ki < ci_g.k; ki++) {
        let ty = iy + i32(ci_g.pad) - i32(ki);
        if (ty < 0 || ty % s != 0 || ty / s >= i32(ci_g.oh)) { continue; }
        for (var kj = 0u; kj < ci_g.k; kj++) {
            let tx = ix + i32(ci_g.pad) - i32(kj);
            if (tx < 0 || tx % s != 0 || tx / s >= i32(ci_g.ow)) { continue; }
            let row = (c * ci_g.k + ki) * ci_g.k + kj;
            let col = b * ci_g.oh * ci_g.ow + u32(ty / s) * ci_g.ow + u32(tx / s);
            acc += ci_dcols[row * np + col];
        }
    }
    ci_dx[e] = acc;
}
