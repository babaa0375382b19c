// Row-wise LayerNorm / RMSNorm, forward and backward. One 64-thread workgroup per row of n
// features (row = wg.y * num_workgroups.x + wg.x), reductions through workgroup memory.
// Parameter gradients (*_params): one thread per column and chunk of `chunk` rows (chunk =
// wg.y) writes that chunk's partial sums at [chunk, column]; the wrapper sums the partials.

const WG: u32 = 64u;

struct Rows { rows: u32, n: u32, eps: f32, inv_n: f32 }
struct Cols { rows: u32, n: u32, chunk: u32 }

var<workgroup> red: array<f32, 64>;
var<workgroup> red2: array<f32, 64>;

fn row_of(wg: vec3<u32>, nwg: vec3<u32>) -> u32 { return wg.y * nwg.x + wg.x; }

// Sum of red[] and red2[] over the workgroup; every thread gets the totals in red[0], red2[0].
fn reduce2(t: u32) {
    for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
        workgroupBarrier();
        if (t < stride) {
            red[t] += red[t + stride];
            red2[t] += red2[t + stride];
        }
    }
    workgroupBarrier();
}

// ---- layer norm forward: Y = (X - mean) * rstd * G + B; MEAN, RSTD per row.
@group(0) @binding(0) var<storage, read> x_lf: array<f32>;
@group(0) @binding(1) var<storage, read> g_lf: array<f32>;
@group(0) @binding(2) var<storage, read> b_lf: array<f32>;
@group(0) @binding(3) var<storage, read_write> y_lf: array<f32>;
@group(0) @binding(4) var<storage, read_write> mean_lf: array<f32>;
@group(0) @binding(5) var<storage, read_write> rstd_lf: array<f32>;
@group(0) @binding(6) var<uniform> p_lf: Rows;

@compute @workgroup_size(64)
fn ln_forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = row_of(wg, nwg);
    if (r >= p_lf.rows) { return; }  // uniform per workgroup: barriers stay uniform
    let t = lid.x;
    let base = r * p_lf.n;
    var s = 0.0;
    for (var j = t; j < p_lf.n; j += WG) { s += x_lf[base + j]; }
    red[t] = s;
    red2[t] = 0.0;
    reduce2(t);
    let m = red[0] * p_lf.inv_n;
    workgroupBarrier();
    var ss = 0.0;
    for (var j = t; j < p_lf.n; j += WG) { let d = x_lf[base + j] - m; ss += d * d; }
    red[t] = ss;
    reduce2(t);
    let a = 1.0 / sqrt(red[0] * p_lf.inv_n + p_lf.eps);
    for (var j = t; j < p_lf.n; j += WG) {
        y_lf[base + j] = (x_lf[base + j] - m) * a * g_lf[j] + b_lf[j];
    }
    if (t == 0u) { mean_lf[r] = m; rstd_lf[r] = a; }
}

// ---- layer norm backward dx: DX = rstd * (DY*G - mean(DY*G) - xhat * mean(DY*G*xhat)).
@group(0) @binding(0) var<storage, read> x_lb: array<f32>;
@group(0) @binding(1) var<storage, read> g_lb: array<f32>;
@group(0) @binding(2) var<storage, read> mean_lb: array<f32>;
@group(0) @binding(3) var<storage, read> rstd_lb: array<f32>;
@group(0) @binding(4) var<storage, read> dy_lb: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx_lb: array<f32>;
@group(0) @binding(6) var<uniform> p_lb: Rows;

@compute @workgroup_size(64)
fn ln_backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = row_of(wg, nwg);
    if (r >= p_lb.rows) { return; }
    let t = lid.x;
    let base = r * p_lb.n;
    let m = mean_lb[r];
    let a = rstd_lb[r];
    var s1 = 0.0;
    var s2 = 0.0;
    for (var j = t; j < p_lb.n; j += WG) {
        let g = dy_lb[base + j] * g_lb[j];
        s1 += g;
        s2 += g * (x_lb[base + j] - m) * a;
    }
    red[t] = s1;
    red2[t] = s2;
    reduce2(t);
    let m1 = red[0] * p_lb.inv_n;
    let m2 = red2[0] * p_lb.inv_n;
    for (var j = t; j < p_lb.n; j += WG) {
        let xh = (x_lb[base + j] - m) * a;
        dx_lb[base + j] = a * (dy_lb[base + j] * g_lb[j] - m1 - xh * m2);
    }
}

// ---- layer norm parameter grads: DG[j] = sum_r DY * xhat, DB[j] = sum_r DY.
@group(0) @binding(0) var<storage, read> x_lp: array<f32>;
@group(0) @binding(1) var<storage, read> mean_lp: array<f32>;
@group(0) @binding(2) var<storage, read> rstd_lp: array<f32>;
@group(0) @binding(3) var<storage, read> dy_lp: array<f32>;
@group(0) @binding(4) var<storage, read_write> dg_lp: array<f32>;
@group(0) @binding(5) var<storage, read_write> db_lp: array<f32>;
@group(0) @binding(6) var<uniform> p_lp: Cols;

@compute @workgroup_size(64)
fn ln_params(@builtin(global_invocation_id) gid: vec3<u32>,
             @builtin(workgroup_id) wg: vec3<u32>) {
    let j = gid.x;
    if (j >= p_lp.n) { return; }
    var sg = 0.0;
    var sb = 0.0;
    for (var r = wg.y * p_lp.chunk; r < min(p_lp.rows, (wg.y + 1u) * p_lp.chunk); r++) {
        let i = r * p_lp.n + j;
        sg += dy_lp[i] * (x_lp[i] - mean_lp[r]) * rstd_lp[r];
        sb += dy_lp[i];
    }
    dg_lp[wg.y * p_lp.n + j] = sg;
    db_lp[wg.y * p_lp.n + j] = sb;
}

// ---- rms norm forward: Y = X * rstd * G, rstd = 1 / sqrt(mean(X^2) + eps).
@group(0) @binding(0) var<storage, read> x_rf: array<f32>;
@group(0) @binding(1) var<storage, read> g_rf: array<f32>;
@group(0) @binding(2) var<storage, read_write> y_rf: array<f32>;
@group(0) @binding(3) var<storage, read_write> rstd_rf: array<f32>;
@group(0) @binding(4) var<uniform> p_rf: Rows;

@compute @workgroup_size(64)
fn rms_forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = row_of(wg, nwg);
    if (r >= p_rf.rows) { return; }
    let t = lid.x;
    let base = r * p_rf.n;
    var ss = 0.0;
    for (var j = t; j < p_rf.n; j += WG) { let v = x_rf[base + j]; ss += v * v; }
    red[t] = ss;
    red2[t] = 0.0;
    reduce2(t);
    let a = 1.0 / sqrt(red[0] * p_rf.inv_n + p_rf.eps);
    for (var j = t; j < p_rf.n; j += WG) { y_rf[base + j] = x_rf[base + j] * a * g_rf[j]; }
    if (t == 0u) { rstd_rf[r] = a; }
}

// ---- rms norm backward dx: DX = rstd * (DY*G - xhat * mean(DY*G*xhat)).
@group(0) @binding(0) var<storage, read> x_rb: array<f32>;
@group(0) @binding(1) var<storage, read> g_rb: array<f32>;
@group(0) @binding(2) var<storage, read> rstd_rb: array<f32>;
@group(0) @binding(3) var<storage, read> dy_rb: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx_rb: array<f32>;
@group(0) @binding(5) var<uniform> p_rb: Rows;

@compute @workgroup_size(64)
fn rms_backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = row_of(wg, nwg);
    if (r >= p_rb.rows) { return; }
    let t = lid.x;
    let base = r * p_rb.n;
    let a = rstd_rb[r];
    var s = 0.0;
    for (var j = t; j < p_rb.n; j += WG) {
        s += dy_rb[base + j] * g_rb[j] * x_rb[base + j] * a;
    }
    red[t] = s;
    red2[t] = 0.0;
    reduce2(t);
    let m = red[0] * p_rb.inv_n;
    for (var j = t; j < p_rb.n; j += WG) {
        dx_rb[base + j] = a * (dy_rb[base + j] * g_rb[j] - x_rb[base + j] * a * m);
    }
}

// ---- rms norm parameter grad: DG[j] = sum_r DY * X * rstd.
@group(0) @binding(0) var<storage, read> x_rp: array<f32>;
@group(0) @binding(1) var<storage, read> rstd_rp: array<f32>;
@group(0) @binding(2) var<storage, read> dy_rp: array<f32>;
@group(0) @binding(3) var<storage, read_write> dg_rp: array<f32>;
@group(0) @binding(4) var<uniform> p_rp: Cols;

@compute @workgroup_size(64)
fn rms_params(@builtin(global_invocation_id) gid: vec3<u32>,
              @builtin(workgroup_id) wg: vec3<u32>) {
    let j = gid.x;
    if (j >= p_rp.n) { return; }
    var sg = 0.0;
    for (var r = wg.y * p_rp.chunk; r < min(p_rp.rows, (wg.y + 1u) * p_rp.chunk); r++) {
        let i = r * p_rp.n + j;
        sg += dy_rp[i] * x_rp[i] * rstd_rp[r];
    }
    dg_rp[wg.y * p_rp.n + j] = sg;
}
