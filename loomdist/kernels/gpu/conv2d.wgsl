// Conv2D around the tiled GEMM: im2col, the bias on the way back to NCHW, col2im; the
// activation and its derivative are the element-wise ops (ops.activate, ops.act_backward).
// Layouts are LOOM's NCHW: x (n, C, H, W), y and z (n, F, oh, ow), kernel (F, C*k*k).
// Columns are batch-wide, cols (C*k*k, n*P) with P = oh*ow, row (c*k + ki)*k + kj and
// column b*P + p, so one GEMM W (F, C*k*k) @ cols gives z^T (F, n*P) for the whole batch.
// Each entry point declares its own bindings: arrays 0..k-1 in the wrapper's order, then the
// uniform. One invocation per output element; 2-D dispatch past 65535 workgroups.

const WG: u32 = 64u;

struct Geo {
    n: u32, c: u32, h: u32, w: u32,
    f: u32, k: u32, stride: u32, pad: u32,
    oh: u32, ow: u32, p0: u32, p1: u32,
}

fn flat(gid: vec3<u32>, nwg: vec3<u32>) -> u32 { return gid.x + gid.y * nwg.x * WG; }

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

// --------------------------------------- z[b, f, p] = z^T[f, b*P + p] + bias[f] (to NCHW)
@group(0) @binding(0) var<storage, read> bn_zt: array<f32>;
@group(0) @binding(1) var<storage, read> bn_bias: array<f32>;
@group(0) @binding(2) var<storage, read_write> bn_z: array<f32>;
@group(0) @binding(3) var<uniform> bn_g: Geo;

@compute @workgroup_size(64)
fn bias_nchw(@builtin(global_invocation_id) gid: vec3<u32>,
             @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = flat(gid, nwg);  // e = (b*F + f)*P + p
    let pp = bn_g.oh * bn_g.ow;
    if (e >= bn_g.n * bn_g.f * pp) { return; }
    let p = e % pp;
    let f = (e / pp) % bn_g.f;
    let b = e / (pp * bn_g.f);
    bn_z[e] = bn_zt[f * bn_g.n * pp + b * pp + p] + bn_bias[f];
}

// ------------------------------ dz[b*P + p, f] = dz_nchw[b, f, p]: (n*P, F), GEMM-ready
@group(0) @binding(0) var<storage, read> tr_dz: array<f32>;
@group(0) @binding(1) var<storage, read_write> tr_rows: array<f32>;
@group(0) @binding(2) var<uniform> tr_g: Geo;

@compute @workgroup_size(64)
fn to_rows(@builtin(global_invocation_id) gid: vec3<u32>,
           @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = flat(gid, nwg);  // e = (b*P + p)*F + f, the output index
    let pp = tr_g.oh * tr_g.ow;
    if (e >= tr_g.n * tr_g.f * pp) { return; }
    let f = e % tr_g.f;
    let p = (e / tr_g.f) % pp;
    let b = e / (tr_g.f * pp);
    tr_rows[e] = tr_dz[(b * tr_g.f + f) * pp + p];
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
