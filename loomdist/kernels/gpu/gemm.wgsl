// Tiled float32 GEMM. This is a template: gemm_codegen.py fills in its placeholders with
// constants and fully unrolled statements (no inner loops, so every register index is a
// literal and no loop counter stands in the way of the driver's scheduler).
//
// C (M, N) = op(A) @ op(B), plus the old C when p.accumulate != 0; row-major storage.
// op(A) = A stored (M, K), or A^T of A stored (K, M); op(B) = B stored (K, N), or B^T of B
// stored (N, K).
//
// 256 threads (16 x 16) compute a $BM x $BN block of C; each thread holds $TM x $TN
// accumulators in vec4s, its rows and columns in runs of 4 spaced 64 apart, so each
// k step reads op(A) and op(B) from workgroup memory as whole vec4s without bank conflicts.
// Tiles of $BK k-values are staged k-major, (k, m) and (k, n), with 4 floats of padding per
// row, in two buffers: the next tile is fetched into registers while the current one is
// multiplied, so each k tile costs one barrier.

struct Params { M: u32, N: u32, K: u32, accumulate: u32 }

@group(0) @binding(0) var<storage, read> A: array<$ELEM>;  // f32, or vec4 for aligned rows
@group(0) @binding(1) var<storage, read> B: array<$ELEM>;
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

const BK: u32 = ${BK}u;
const AS: u32 = ${AS}u;  // vec4s per k row of As: (BM + 4) / 4
const BS: u32 = ${BS}u;  // vec4s per k row of Bs: (BN + 4) / 4
var<workgroup> As: array<vec4<f32>, $AS_LEN>;  // two (BK, BM + 4) tiles of op(A)
var<workgroup> Bs: array<vec4<f32>, $BS_LEN>;  // two (BK, BN + 4) tiles of op(B)

fn load_a(i: u32, ok: bool) -> $ELEM {
    if (ok) { return A[i]; }
    return $ZERO;
}

fn load_b(i: u32, ok: bool) -> $ELEM {
    if (ok) { return B[i]; }
    return $ZERO;
}

fn store_c(row: u32, col: u32, v: f32) {
    if (row < p.M && col < p.N) {
        let i = row * p.N + col;
        if (p.accumulate != 0u) { C[i] = C[i] + v; } else { C[i] = v; }
    }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
$THREAD_XY
    let row0 = wg.y * ${BM}u;
    let col0 = wg.x * ${BN}u;
$ACC_DECL
$SETUP
    {
        let kf = 0u;
        let ob_a = 0u;
        let ob_b = 0u;
$FETCH
$STAGE
    }
    workgroupBarrier();
    var buf = 0u;
    for (var k0 = 0u; k0 < p.K; k0 += BK) {
        {
            // Fetch the next tile (zeros past K) before multiplying the current one.
            let kf = k0 + BK;
$FETCH
            let ab = buf * BK * AS;
            let bb = buf * BK * BS;
$COMPUTE
            let ob_a = (1u - buf) * BK * AS;
            let ob_b = (1u - buf) * BK * BS;
$STAGE
        }
        workgroupBarrier();
        buf = 1u - buf;
    }
$EPILOGUE
}
