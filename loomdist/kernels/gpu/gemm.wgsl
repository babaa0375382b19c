// Tiled float32 GEMM: C (M, N) = op(A) (M, K) @ op(B) (K, N), row-major storage.
// op(A) = A, or A^T when TRANS_A (A stored (K, M)); likewise op(B) with TRANS_B (B stored (N, K)).
// A 16x16 workgroup computes a 64x64 block of C: each thread holds a 4x4 register block, and
// 64x16 / 16x64 tiles of op(A) / op(B) are staged through workgroup memory per K step.

override TRANS_A: u32 = 0u;
override TRANS_B: u32 = 0u;

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;
const TM: u32 = 4u;
const TN: u32 = 4u;
const THREADS: u32 = 256u;

struct Params { M: u32, N: u32, K: u32, pad: u32 }

@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> B: array<f32>;
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

var<workgroup> As: array<f32, 1024>;  // (BK, BM): As[k * BM + m]
var<workgroup> Bs: array<f32, 1024>;  // (BK, BN): Bs[k * BN + n]

fn load_a(row: u32, k: u32) -> f32 {
    if (row >= p.M || k >= p.K) { return 0.0; }
    if (TRANS_A != 0u) { return A[k * p.M + row]; }
    return A[row * p.K + k];
}

fn load_b(k: u32, col: u32) -> f32 {
    if (k >= p.K || col >= p.N) { return 0.0; }
    if (TRANS_B != 0u) { return B[col * p.K + k]; }
    return B[k * p.N + col];
}

// Each thread stages 4 elements of each tile; consecutive threads walk the stored
// contiguous axis so global reads coalesce whether or not the operand is transposed.
fn stage_tiles(tid: u32, row0: u32, col0: u32, k0: u32) {
    for (var r = 0u; r < 4u; r++) {
        let e = tid + r * THREADS;
        var m = e / BK;
        var ka = e % BK;
        if (TRANS_A != 0u) { m = e % BM; ka = e / BM; }
        As[ka * BM + m] = load_a(row0 + m, k0 + ka);
        var n = e % BN;
        var kb = e / BN;
        if (TRANS_B != 0u) { n = e / BK; kb = e % BK; }
        Bs[kb * BN + n] = load_b(k0 + kb, col0 + n);
    }
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let tid = lid.y * 16u + lid.x;
    let row0 = wg.y * BM;
    let col0 = wg.x * BN;
    var acc: array<f32, 16>;  // (TM, TN) register block
    var a_reg: array<f32, 4>;
    var b_reg: array<f32, 4>;
    for (var k0 = 0u; k0 < p.K; k0 += BK) {
        stage_tiles(tid, row0, col0, k0);
        workgroupBarrier();
        for (var k = 0u; k < BK; k++) {
            for (var i = 0u; i < TM; i++) { a_reg[i] = As[k * BM + lid.y * TM + i]; }
            for (var j = 0u; j < TN; j++) { b_reg[j] = Bs[k * BN + lid.x * TN + j]; }
            for (var i = 0u; i < TM; i++) {
                for (var j = 0u; j < TN; j++) {
                    acc[i * TN + j] = fma(a_reg[i], b_reg[j], acc[i * TN + j]);
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < TM; i++) {
        let row = row0 + lid.y * TM + i;
        for (var j = 0u; j < TN; j++) {
            let col = col0 + lid.x * TN + j;
            if (row < p.M && col < p.N) { C[row * p.N + col] = acc[i * TN + j]; }
        }
    }
}
