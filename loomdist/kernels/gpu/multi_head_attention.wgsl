// Causal multi-head attention core: bias + RoPE, scores, causal softmax, weighted sums, and
// the backward of each. Q, K, V, the context and their gradients are (batch*seq, d) row-major
// with head h in columns [h*hd, (h+1)*hd); scores and probabilities are (batch, heads, seq,
// seq). The projections themselves are tiled GEMMs in the wrapper. Each entry point declares
// its own bindings: arrays 0..k-1 in the wrapper's order, then the uniform; one invocation per
// output element (or row), 2-D dispatch past 65535 workgroups.

const WG: u32 = 64u;
const NEG_BIG: f32 = -3.4028234e38;

struct Att { nb: u32, seq: u32, nh: u32, hd: u32, d: u32, rotate: u32, scale: f32, p0: u32 }

fn flat(gid: vec3<u32>, nwg: vec3<u32>) -> u32 { return gid.x + gid.y * nwg.x * WG; }

// --------------------------- a += bias, then rotate_half RoPE on every head when `rotate`
// table (2, seq, hd): cos then sin. One invocation per (row, head, i < hd/2) pair.
@group(0) @binding(0) var<storage, read_write> br_a: array<f32>;
@group(0) @binding(1) var<storage, read> br_bias: array<f32>;
@group(0) @binding(2) var<storage, read> br_tab: array<f32>;
@group(0) @binding(3) var<uniform> br_s: Att;

@compute @workgroup_size(64)
fn bias_rope(@builtin(global_invocation_id) gid: vec3<u32>,
             @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = flat(gid, nwg);
    let half = br_s.hd / 2u;
    if (e >= br_s.nb * br_s.seq * br_s.d / 2u) { return; }
    let i = e % half;
    let head = (e / half) % br_s.nh;
    let row = e / (half * br_s.nh);
    let c1 = head * br_s.hd + i;
    let c2 = c1 + half;
    let x1 = br_a[row * br_s.d + c1] + br_bias[c1];
    let x2 = br_a[row * br_s.d + c2] + br_bias[c2];
    if (br_s.rotate == 0u) {
        br_a[row * br_s.d + c1] = x1;
        br_a[row * br_s.d + c2] = x2;
        return;
    }
    let t = (row % br_s.seq) * br_s.hd;
    let sin0 = br_s.seq * br_s.hd;
    br_a[row * br_s.d + c1] = x1 * br_tab[t + i] - x2 * br_tab[sin0 + t + i];
    br_a[row * br_s.d + c2] = x2 * br_tab[t + half + i] + x1 * br_tab[sin0 + t + half + i];
}

// ------------------------- the adjoint rotation on a gradient, in place (RoPE backward)
@group(0) @binding(0) var<storage, read_write> rb_g: array<f32>;
@group(0) @binding(1) var<storage, read> rb_tab: array<f32>;
@group(0) @binding(2) var<uniform> rb_s: Att;

@compute @workgroup_size(64)
fn rope_back(@builtin(global_invocation_id) gid: vec3<u32>,
             @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = flat(gid, nwg);
    let half = rb_s.hd / 2u;
    if (e >= rb_s.nb * rb_s.seq * rb_s.d / 2u) { return; }
    let i = e % half;
    let head = (e / half) % rb_s.nh;
    let row = e / (half * rb_s.nh);
    let c1 = row * rb_s.d + head * rb_s.hd + i;
    let c2 = c1 + half;
    let t = (row % rb_s.seq) * rb_s.hd;
    let sin0 = rb_s.seq * rb_s.hd;
    let g1 = rb_g[c1];
    let g2 = rb_g[c2];
    rb_g[c1] = g1 * rb_tab[t + i] + g2 * rb_tab[sin0 + t + half + i];
    rb_g[c2] = g2 * rb_tab[t + half + i] - g1 * rb_tab[sin0 + t + i];
}

// ------------- s[b, h, i, j] = <a[b, i, h, :], c[b, j, h, :]> for j <= i, 0 above (causal)
// Forward scores (a = Q, c = K) and backward dP (a = dctx, c = V).
@group(0) @binding(0) var<storage, read> sc_a: array<f32>;
@group(0) @binding(1) var<storage, read> sc_c: array<f32>;
@group(0) @binding(2) var<storage, read_write> sc_s: array<f32>;
@group(0) @binding(3) var<uniform> sc_p: Att;

@compute @workgroup_size(64)
fn scores(@builtin(global_invocation_id) gid: vec3<u32>,
          @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = flat(gid, nwg);  // ((b*nh + h)*seq + i)*seq + j
    let n = sc_p.seq;
    if (e >= sc_p.nb * sc_p.nh * n * n) { return; }
    let j = e % n;
    let i = (e / n) % n;
    let h = (e / (n * n)) % sc_p.nh;
    let b = e / (n * n * sc_p.nh);
    if (j > i) { sc_s[e] = 0.0; return; }
    let ra = (b * n + i) * sc_p.d + h * sc_p.hd;
    let rc = (b * n + j) * sc_p.d + h * sc_p.hd;
    var acc = 0.0;
    for (var t = 0u; t < sc_p.hd; t++) { acc += sc_a[ra + t] * sc_c[rc + t]; }
    sc_s[e] = acc;
}

// ------------------- p[.., i, j] = softmax_j(scale * s[.., i, j]) over j <= i, in place
@group(0) @binding(0) var<storage, read_write> cm_s: array<f32>;
@group(0) @binding(1) var<uniform> cm_p: Att;

@compute @workgroup_size(64)
fn causal_softmax(@builtin(global_invocation_id) gid: vec3<u32>,
                  @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = flat(gid, nwg);  // (b*nh + h)*seq + i
    let n = cm_p.seq;
    if (r >= cm_p.nb * cm_p.nh * n) { return; }
    let i = r % n;
    let base = r * n;
    var m = NEG_BIG;
    for (var j = 0u; j <= i; j++) { m = max(m, cm_s[base + j] * cm_p.scale); }
    var total = 0.0;
    for (var j = 0u; j <= i; j++) {
        let v = exp(cm_s[base + j] * cm_p.scale - m);
        cm_s[base + j] = v;
        total += v;
    }
    let inv = 1.0 / total;
    for (var j = 0u; j <= i; j++) { cm_s[base + j] *= inv; }
}

// ---------------------------- ds = scale * p * (dp - <dp, p>) per row, in place on dp
@group(0) @binding(0) var<storage, read> cb_p: array<f32>;
@group(0) @binding(1) var<storage, read_write> cb_dp: array<f32>;
@group(0) @binding(2) var<uniform> cb_s: Att;

@compute @workgroup_size(64)
fn causal_softmax_back(@builtin(global_invocation_id) gid: vec3<u32>,
                       @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = flat(gid, nwg);
    let n = cb_s.seq;
    if (r >= cb_s.nb * cb_s.nh * n) { return; }
    let i = r % n;
    let base = r * n;
    var dot = 0.0;
    for (var j = 0u; j <= i; j++) { dot += cb_dp[base + j] * cb_p[base + j]; }
    for (var j = 0u; j <= i; j++) {
        cb_dp[base + j] = cb_s.scale * cb_p[base + j] * (cb_dp[base + j] - dot);
    }
}

// ----------------- out[b, i, h, t] = sum_{j <= i} p[b, h, i, j] * a[b, j, h, t]
// Forward context (p, a = V) and backward dQ (p = dS, a = K).
@group(0) @binding(0) var<storage, read> at_p: array<f32>;
@group(0) @binding(1) var<storage, read> at_a: array<f32>;
@group(0) @binding(2) var<storage, read_write> at_out: array<f32>;
@group(0) @binding(3) var<uniform> at_s: Att;

@compute @workgroup_size(64)
fn attend(@builtin(global_invocation_id) gid: vec3<u32>,
          @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = flat(gid, nwg);  // (b*seq + i)*d + h*hd + t
    let n = at_s.seq;
    if (e >= at_s.nb * n * at_s.d) { return; }
    let c = e % at_s.d;
    let h = c / at_s.hd;
    let i = (e / at_s.d) % n;
    let b = e / (at_s.d * n);
    let prow = ((b * at_s.nh + h) * n + i) * n;
    var acc = 0.0;
    for (var j = 0u; j <= i; j++) { acc += at_p[prow + j] * at_a[(b * n + j) * at_s.d + c]; }
    at_out[e] = acc;
}

// ----------------- out[b, j, h, t] = sum_{i >= j} p[b, h, i, j] * a[b, i, h, t]
// Backward dV (p, a = dctx) and dK (p = dS, a = Q).
@group(0) @binding(0) var<storage, read> tb_p: array<f32>;
@group(0) @binding(1) var<storage, read> tb_a: array<f32>;
@group(0) @binding(2) var<storage, read_write> tb_out: array<f32>;
@group(0) @binding(3) var<uniform> tb_s: Att;

@compute @workgroup_size(64)
fn attend_t(@builtin(global_invocation_id) gid: vec3<u32>,
            @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = flat(gid, nwg);  // (b*seq + j)*d + h*hd + t
    let n = tb_s.seq;
    if (e >= tb_s.nb * n * tb_s.d) { return; }
    let c = e % tb_s.d;
    let h = c / tb_s.hd;
    let j = (e / tb_s.d) % n;
    let b = e / (tb_s.d * n);
    let p0 = (b * tb_s.nh + h) * n * n;
    var acc = 0.0;
    for (var i = j; i < n; i++) { acc += tb_p[p0 + i * n + j] * tb_a[(b * n + i) * tb_s.d + c]; }
    tb_out[e] = acc;
}
