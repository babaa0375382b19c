// Causal multi-head attention core: bias + RoPE, causal softmax, a batched strided GEMM for
// the scores and weighted sums, and the backward of each. Q, K, V, the context and their gradients are (batch*seq, d) row-major
// with head h in columns [h*hd, (h+1)*hd); scores and probabilities are (batch, heads, seq,
// seq). The projections themselves are tiled GEMMs in the wrapper. Each entry point declares
// its own bindings: arrays 0..k-1 in the wrapper's order, then the uniform; one invocation per
// output element (or row), 2-D dispatch past 65535 workgroups.

const WG: u32 = 64u;
const NEG_BIG: f32 = -3.4028234e38;

struct Att { nb: u32, seq: u32, nh: u32, hd: u32, d: u32, rotate: u32, scale: f32, p0: u32 }

fn flat(gid: vec3<u32>, nwg: vec3<u32>) -> u32 { return gid.x + gid.y * nwg.x * WG; }

// One invocation per rotated pair (row, head, i < hd/2): columns col and col + hd/2 of the
// row, whose position's cos/sin start at t in the table (2, seq, hd) (cos, then sin).
struct Pair { row: u32, col: u32, i: u32, t: u32 }

fn pair_of(e: u32, s: Att) -> Pair {
    let half = s.hd / 2u;
    let head = (e / half) % s.nh;
    let row = e / (half * s.nh);
    return Pair(row, head * s.hd + e % half, e % half, (row % s.seq) * s.hd);
}

// --------------------------- a += bias, then rotate_half RoPE on every head when `rotate`
@group(0) @binding(0) var<storage, read_write> br_a: array<f32>;
@group(0) @binding(1) var<storage, read> br_bias: array<f32>;
@group(0) @binding(2) var<storage, read> br_tab: array<f32>;
@group(0) @binding(3) var<uniform> br_s: Att;

@compute @workgroup_size(64)
fn bias_rope(@builtin(global_invocation_id) gid: vec3<u32>,
             @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = flat(gid, nwg);
    if (e >= br_s.nb * br_s.seq * br_s.d / 2u) { return; }
    let q = pair_of(e, br_s);
    let half = br_s.hd / 2u;
    let a1 = q.row * br_s.d + q.col;
    let x1 = br_a[a1] + br_bias[q.col];
    let x2 = br_a[a1 + half] + br_bias[q.col + half];
    if (br_s.rotate == 0u) {
        br_a[a1] = x1;
        br_a[a1 + half] = x2;
        return;
    }
    let c = q.t + q.i;
    let sn = br_s.seq * br_s.hd + c;
    br_a[a1] = x1 * br_tab[c] - x2 * br_tab[sn];
    br_a[a1 + half] = x2 * br_tab[c + half] + x1 * br_tab[sn + half];
}

// ------------------------- the adjoint rotation on a gradient, in place (RoPE backward)
@group(0) @binding(0) var<storage, read_write> rb_g: array<f32>;
@group(0) @binding(1) var<storage, read> rb_tab: array<f32>;
@group(0) @binding(2) var<uniform> rb_s: Att;

@compute @workgroup_size(64)
fn rope_back(@builtin(global_invocation_id) gid: vec3<u32>,
             @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = flat(gid, nwg);
    if (e >= rb_s.nb * rb_s.seq * rb_s.d / 2u) { return; }
    let q = pair_of(e, rb_s);
    let half = rb_s.hd / 2u;
    let a1 = q.row * rb_s.d + q.col;
    let c = q.t + q.i;
    let sn = rb_s.seq * rb_s.hd + c;
    let g1 = rb_g[a1];
    let g2 = rb_g[a1 + half];
    rb_g[a1] = g1 * rb_tab[c] + g2 * rb_tab[sn + half];
    rb_g[a1 + half] = g2 * rb_tab[c + half] - g1 * rb_tab[sn];
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

// ---------------------------- batched strided GEMM over the (batch, head) pairs: C = A @ B
// Operand X's element (r, c) of pair z = (b, h) lies at b*X.x + h*X.y + r*X.z + c*X.w, so the
// head-interleaved Q/K/V rows, the (b, h, s, s) probabilities and their transposes are all
// read in place. 16x16 tiles of C per workgroup, staged 16 deep through workgroup memory.
// mode 1: C is causal (0 where col > row; tiles wholly above the diagonal skip the sum);
// mode 2: A is lower-triangular (k <= row); mode 3: A is upper-triangular (k >= row).
const T: u32 = 16u;

struct Batched {
    m: u32, n: u32, k: u32, nh: u32, z0: u32, mode: u32, p0: u32, p1: u32,
    a: vec4<u32>, b: vec4<u32>, c: vec4<u32>,
}

@group(0) @binding(0) var<storage, read> bg_a: array<f32>;
@group(0) @binding(1) var<storage, read> bg_b: array<f32>;
@group(0) @binding(2) var<storage, read_write> bg_c: array<f32>;
@group(0) @binding(3) var<uniform> bg: Batched;

var<workgroup> tile_a: array<f32, 256>;  // (T rows, T of k)
var<workgroup> tile_b: array<f32, 256>;  // (T of k, T cols)

fn base(s: vec4<u32>, z: u32) -> u32 { return (z / bg.nh) * s.x + (z % bg.nh) * s.y; }

@compute @workgroup_size(16, 16)
fn bgemm(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let z = wg.z + bg.z0;
    let row0 = wg.y * T;
    let col0 = wg.x * T;
    let row = row0 + lid.y;
    let col = col0 + lid.x;
    let cb = base(bg.c, z) + row * bg.c.z + col * bg.c.w;
    if (bg.mode == 1u && col0 > row0 + T - 1u) {  // above the diagonal: all masked
        if (row < bg.m && col < bg.n) { bg_c[cb] = 0.0; }
        return;
    }
    var kbeg = 0u;
    var kend = bg.k;
    if (bg.mode == 2u) { kend = min(bg.k, row0 + T); }
    if (bg.mode == 3u) { kbeg = row0; }
    let ab = base(bg.a, z);
    let bb = base(bg.b, z);
    var acc = 0.0;
    // Neighbouring invocations (lid.x) walk each operand's contiguous axis, so loads coalesce
    // whether an operand is stored row- or column-contiguous.
    let ar = select(lid.x, lid.y, bg.a.w == 1u);  // tile row this invocation loads of A
    let ak = select(lid.y, lid.x, bg.a.w == 1u);
    let bk = select(lid.x, lid.y, bg.b.w == 1u);  // tile k this invocation loads of B
    let bc = select(lid.y, lid.x, bg.b.w == 1u);
    for (var k0 = kbeg; k0 < kend; k0 += T) {
        var va = 0.0;
        if (row0 + ar < bg.m && k0 + ak < bg.k) {
            va = bg_a[ab + (row0 + ar) * bg.a.z + (k0 + ak) * bg.a.w];
        }
        var vb = 0.0;
        if (k0 + bk < bg.k && col0 + bc < bg.n) {
            vb = bg_b[bb + (k0 + bk) * bg.b.z + (col0 + bc) * bg.b.w];
        }
        tile_a[ar * T + ak] = va;
        tile_b[bk * T + bc] = vb;
        workgroupBarrier();
        for (var t = 0u; t < T; t++) {
            acc = fma(tile_a[lid.y * T + t], tile_b[t * T + lid.x], acc);
        }
        workgroupBarrier();
    }
    if (row < bg.m && col < bg.n) {
        bg_c[cb] = select(acc, 0.0, bg.mode == 1u && col > row);
    }
}
