"""The KV memory pool: requests are admitted by the bytes their cache will really hold under their policy.

A request reserves its peak while its prompt is prefilled (the whole prompt's rows: a query-aware eviction needs
every key once, at the end of the prompt) and, once evicted, only what it keeps plus its decode rows. The bytes per
row come from the model's shapes and match what `SieveCache.kv_bytes()` counts (keys, values and the int64
position of each row), plus the selector's own summaries (`Policy.state_bytes`: Quest's page bounds, HISA's and
rectified's block pools, FASA's key channels; TokenSelect's and cluster's per-step memos are not reserved);
`measured_bytes` reads the real allocation, selectors' scratch included.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tokensieve.core.cache import SieveCache
from tokensieve.core.policy import Policy
from tokensieve.core.quant import GROUP, SINKS, WINDOW, check_kv_dtype
from tokensieve.core.session import Session


@dataclass(frozen=True)
class Footprint:
    """Bytes per cached row of one model: all full-attention layers together, per sequence."""

    row_bytes: int
    full_layers: int
    kv_heads: int = 1
    head_dim: int = 1
    element: int = 4

    @classmethod
    def of(cls, model) -> Footprint:
        config = model.config.get_text_config(decoder=True)
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        kv_heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
        kinds = getattr(config, "layer_types", None) or ["full_attention"] * config.num_hidden_layers
        full = sum(kind == "full_attention" for kind in kinds)
        element = next(model.parameters()).element_size()
        per_layer = kv_heads * (2 * head_dim * element + 8)  # keys + values + an int64 position per KV head
        return cls(row_bytes=per_layer * full, full_layers=full, kv_heads=kv_heads, head_dim=head_dim,
                   element=element)

    def coded_layer_bytes(self, rows: int, bits: int) -> int:
        """The most one quantized layer (`core/quant_layer.py`) allocates for `rows` rows: codes with their float16
        scales (room for a group and 1/16 of growth included), the full-precision sinks and newest rows, and
        an int64 position per row."""
        d, group = self.head_dim, GROUP
        code_row = 2 * d * bits // 8 + 4 * d // group + 4 * d // min(group, d)  # codes + (low, step) per group
        coded = rows + group + max(2 * group, rows // 16)
        fp_rows = SINKS + WINDOW + group  # the sinks, the window and a group arriving
        return self.kv_heads * (coded * code_row + fp_rows * 2 * d * self.element + 8 * rows)

    def prefill_bytes(self, prompt: int, new: int, policy: Policy, whole: bool = False, kv_dtype: str = "fp") -> int:
        """The most this request holds while its prompt goes in. In pieces: every layer holds the whole prompt at
        full precision until the last piece (evicts and) codes it; without eviction over fp, prompt + new rows.
        In one piece (`whole`): each layer evicts, and codes its cold rows (`Session.code_when_attended`), right
        after it attends, so the peak is what the request keeps plus the prompt in two layers (the one attending
        and the one being freed)."""
        rows = prompt if evicts(policy) else prompt + new  # without eviction a layer's buffer has room for all
        if not whole or (rows > prompt and check_kv_dtype(kv_dtype) is None):
            return self.row_bytes * rows
        return self.decode_bytes(prompt, new, policy, kv_dtype) + 2 * self.row_bytes * rows // self.full_layers

    def decode_bytes(self, prompt: int, new: int, policy: Policy, kv_dtype: str = "fp") -> int:
        """What it holds after its prompt is evicted to the budget: the kept rows plus room for `new` tokens, at
        full precision or as codes (`kv_dtype`), and the policy's own state (`Policy.state_bytes`: a selector's
        summaries). The prompt always goes in at full precision (`prefill_bytes`)."""
        if not evicts(policy):
            per_layer = [prompt + new] * self.full_layers
        else:
            every = policy.decode_evict_every()
            per_layer = [cap + max(new, every) for cap in policy.evictor().capacities(prompt, self.full_layers)]
        bits = check_kv_dtype(kv_dtype)
        state = sum(policy.state_bytes(rows, self.kv_heads, self.head_dim, self.element, bits) for rows in per_layer)
        if bits is None:
            return self.row_bytes * sum(per_layer) // self.full_layers + state
        return sum(self.coded_layer_bytes(rows, bits) for rows in per_layer) + state


def evicts(policy: Policy) -> bool:
    return policy.evicts()


def measured_bytes(cache: SieveCache, session: Session) -> int:
    """Bytes really allocated for one sequence: its cache buffers plus its selectors' scratch state."""
    return cache.kv_bytes() + session.state_bytes()


@dataclass
class KVPool:
    """Reserved bytes per sequence against a capacity (None: unlimited)."""

    capacity: int | None
    reserved: dict[int, int] = field(default_factory=dict)

    @property
    def in_use(self) -> int:
        return sum(self.reserved.values())

    def fits(self, nbytes: int) -> bool:
        return self.capacity is None or self.in_use + nbytes <= self.capacity

    def could_ever_fit(self, nbytes: int) -> bool:
        return self.capacity is None or nbytes <= self.capacity

    def reserve(self, key: int, nbytes: int) -> None:
        self.reserved[key] = nbytes

    def release(self, key: int) -> None:
        self.reserved.pop(key, None)
