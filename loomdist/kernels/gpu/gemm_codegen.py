"""WGSL source of the tiled GEMM: fills gemm.wgsl's placeholders with unrolled statements.

Every loop inside a k tile (fetch, stage, multiply, store) is written out here, so register
indices are literals: drivers keep the accumulators in registers and the k loop is the only
loop left in the shader.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from string import Template

from loomdist.errors import ConfigError
from loomdist.kernels.gpu.device import SHADER_DIR

THREADS = 256  # 16 x 16 threads per workgroup
COMPONENTS = "xyzw"


@dataclass(frozen=True)
class Tile:
    """Block of C per workgroup (bm x bn) and k values per staged tile (bk).

    bm and bn are 64 or 128 (each thread holds bm/16 x bn/16 accumulators); bk is 4, 8 or 16.
    `warp` lays each warp of 32 threads out as 8 x 4 threads of the 16 x 16 grid (instead of
    16 x 2), so a warp's k step reads fewer distinct workgroup-memory words.
    """

    bm: int = 128
    bn: int = 128
    bk: int = 8
    warp: bool = False

    def __post_init__(self):
        if self.bm not in (64, 128) or self.bn not in (64, 128) or self.bk not in (4, 8, 16):
            raise ConfigError(
                f"gemm Tile: unsupported tile ({self.bm}x{self.bn}x{self.bk}); use bm, bn in "
                "(64, 128) and bk in (4, 8, 16)"
            )

    @property
    def shared_bytes(self) -> int:
        """Workgroup memory of the two padded tiles of op(A) and op(B)."""
        return 2 * self.bk * (self.bm + 4 + self.bn + 4) * 4

    @property
    def name(self) -> str:
        return f"{self.bm}x{self.bn}x{self.bk}" + ("w" if self.warp else "")

    def vec4_fetch(self) -> bool:
        """Whether each thread's share of both tiles is whole vec4s (needed for vec4 loads)."""
        return all(span * self.bk // THREADS % 4 == 0 for span in (self.bm, self.bn))

    @classmethod
    def parse(cls, text: str) -> Tile:
        """'128x128x8' or '128x128x8w' (warp layout)."""
        warp = text.endswith("w")
        return cls(*(int(x) for x in text.rstrip("w").split("x")), warp=warp)


@dataclass(frozen=True)
class _Operand:
    """How one operand's tile is fetched: `k_contiguous` when its stored rows run along k."""

    n: str  # "a" or "b": prefix of its WGSL names
    size: str  # its non-k extent in WGSL: "p.M" or "p.N"
    origin: str  # first row of op(A) / column of op(B) in this workgroup
    span: int  # bm or bn
    bk: int
    k_contiguous: bool
    vec4: bool = False  # fetch whole vec4s (the stored rows' length is a multiple of 4)

    @property
    def per_thread(self) -> int:
        return self.span * self.bk // THREADS

    @property
    def shared(self) -> str:
        return self.n.upper() + "s"

    @property
    def stride(self) -> str:
        return self.n.upper() + "S"

    def setup(self) -> list[str]:
        n, per = self.n, self.per_thread
        if self.k_contiguous:  # thread fetches `per` consecutive k of one row t
            tpr = self.bk // per
            return [
                f"let {n}_t = tid / {tpr}u;", f"let {n}_kq = (tid % {tpr}u) * {per}u;",
                f"let {n}_base = ({self.origin} + {n}_t) * p.K + {n}_kq;",
                f"let {n}_tok = {self.origin} + {n}_t < {self.size};",
                f"let {n}_sw = {n}_kq * {self.stride} + {n}_t / 4u;",
                f"let {n}_sc = {n}_t % 4u;",
            ]
        tpr = self.span // per  # thread fetches `per` consecutive t of one k row
        return [
            f"let {n}_kk = tid / {tpr}u;", f"let {n}_tq = (tid % {tpr}u) * {per}u;",
            f"let {n}_col = {self.origin} + {n}_tq;",
        ]

    def fetch(self) -> list[str]:
        if self.vec4:
            return self._fetch_vec4()
        n, lines = self.n, []
        for i in range(self.per_thread):
            if self.k_contiguous:
                index, ok = f"{n}_base + kf + {i}u", f"{n}_tok && kf + {n}_kq + {i}u < p.K"
            else:
                index = f"(kf + {n}_kk) * {self.size} + {n}_col + {i}u"
                ok = f"kf + {n}_kk < p.K && {n}_col + {i}u < {self.size}"
            lines.append(f"let f{n}{i} = load_{n}({index}, {ok});")
        return lines

    def _fetch_vec4(self) -> list[str]:
        """Whole vec4s: in or out of bounds together, as the row length is a multiple of 4."""
        n, lines = self.n, []
        for q in range(self.per_thread // 4):
            if self.k_contiguous:
                index = f"({n}_base + kf) / 4u + {q}u"
                ok = f"{n}_tok && kf + {n}_kq + {4 * q}u < p.K"
            else:
                index = f"((kf + {n}_kk) * {self.size} + {n}_col) / 4u + {q}u"
                ok = f"kf + {n}_kk < p.K && {n}_col + {4 * q}u < {self.size}"
            lines.append(f"let f{n}v{q} = load_{n}({index}, {ok});")
        for i in range(self.per_thread):
            lines.append(f"let f{n}{i} = f{n}v{i // 4}.{COMPONENTS[i % 4]};")
        return lines

    def stage(self) -> list[str]:
        n, per, xs = self.n, self.per_thread, self.shared
        if self.k_contiguous:
            return [f"{xs}[ob_{n} + {n}_sw + {i}u * {self.stride}][{n}_sc] = f{n}{i};"
                    for i in range(per)]
        row = f"ob_{n} + {n}_kk * {self.stride} + {n}_tq / 4u"
        if per % 4 == 0:  # whole vec4s: a thread's run starts on a multiple of 4
            return [f"{xs}[{row} + {q}u] = vec4<f32>("
                    + ", ".join(f"f{n}{4 * q + j}" for j in range(4)) + ");"
                    for q in range(per // 4)]
        return [f"{xs}[{row}][{n}_tq % 4u + {i}u] = f{n}{i};" for i in range(per)]


def _compute(tile: Tile) -> list[str]:
    """One k tile of rank-1 updates: per k, vec4 reads of op(A) and op(B), then vec4 fmas."""
    lines = []
    for k in range(tile.bk):
        body = [f"let ra{g} = As[ab + {k} * AS + {g * 16}u + ty];" for g in range(tile.bm // 64)]
        body += [f"let rb{h} = Bs[bb + {k} * BS + {h * 16}u + tx];" for h in range(tile.bn // 64)]
        for r in range(tile.bm // 16):
            a = f"vec4<f32>(ra{r // 4}.{COMPONENTS[r % 4]})"
            body += [f"acc{r}_{h} = fma({a}, rb{h}, acc{r}_{h});" for h in range(tile.bn // 64)]
        lines += ["{", *("    " + line for line in body), "}"]
    return lines


def _epilogue(tile: Tile) -> list[str]:
    lines = ["let crow = row0 + ty * 4u;", "let ccol = col0 + tx * 4u;"]
    for r in range(tile.bm // 16):
        row = f"crow + {(r // 4) * 64 + r % 4}u"
        for h in range(tile.bn // 64):
            lines += [f"store_c({row}, ccol + {h * 64 + j}u, acc{r}_{h}.{COMPONENTS[j]});"
                      for j in range(4)]
    return lines


def _indent(lines: list[str], depth: int) -> str:
    return "\n".join(" " * (4 * depth) + line for line in lines)


WARP_XY = ["let tx = (tid / 32u) % 2u * 8u + tid % 8u;",
           "let ty = tid / 64u * 4u + tid % 32u / 8u;"]
PLAIN_XY = ["let tx = tid % 16u;", "let ty = tid / 16u;"]


@lru_cache(maxsize=64)
def shader_source(tile: Tile, trans_a: bool, trans_b: bool, vec4: bool = False) -> str:
    """gemm.wgsl with `tile`'s sizes and unrolled code for op(A) = A^T if `trans_a` etc.

    `vec4` binds A and B as arrays of vec4 and fetches whole vec4s: only for tiles with
    `vec4_fetch()` and stored row lengths (K, or M / N when transposed) that are multiples of 4.
    """
    if vec4 and not tile.vec4_fetch():
        raise ConfigError(f"gemm shader_source: tile {tile.name} cannot fetch whole vec4s "
                          "(a thread's share of a tile is not a multiple of 4); use vec4=False")
    ops = (_Operand("a", "p.M", "row0", tile.bm, tile.bk, not trans_a, vec4),
           _Operand("b", "p.N", "col0", tile.bn, tile.bk, trans_b, vec4))
    fetch = [line for op in ops for line in op.fetch()]
    stage = [line for op in ops for line in op.stage()]
    acc = [f"var acc{r}_{h} = vec4<f32>(0.0);"
           for r in range(tile.bm // 16) for h in range(tile.bn // 64)]
    template = Template((SHADER_DIR / "gemm.wgsl").read_text())
    return template.substitute(
        ELEM="vec4<f32>" if vec4 else "f32", ZERO="vec4<f32>(0.0)" if vec4 else "0.0",
        THREAD_XY=_indent(WARP_XY if tile.warp else PLAIN_XY, 1),
        BM=tile.bm, BN=tile.bn, BK=tile.bk, TM=tile.bm // 16, TN=tile.bn // 16,
        AS=(tile.bm + 4) // 4, BS=(tile.bn + 4) // 4,
        AS_LEN=2 * tile.bk * (tile.bm + 4) // 4, BS_LEN=2 * tile.bk * (tile.bn + 4) // 4,
        ACC_DECL=_indent(acc, 1), SETUP=_indent([x for op in ops for x in op.setup()], 1),
        FETCH=_indent(fetch, 3), STAGE=_indent(stage, 3), COMPUTE=_indent(_compute(tile), 3),
        EPILOGUE=_indent(_epilogue(tile), 1),
    )
