"""A GGUF file under llama-cpp-python (llama.cpp), for the parity tests and the peer benchmark; both call
it through export/isolated.py, in a child process, so a crash in llama.cpp is one error."""
import numpy as np

from export.errors import ExportError
from runtime.errors import ContextOverflowError

try:                                     # optional dependency, as in gguf_export.py
    import gguf
except ImportError:
    gguf = None


class LlamaRunner:
    """A GGUF file under llama-cpp-python, one sequence whose KV cache is kept between calls.

        r = LlamaRunner("model.gguf");  logits = r.prefill(ids);  logits = r.step(token);  r.reset();  r.close()

    Feed token ids only: with tokenizer model "none" llama.cpp's tokenize/detokenize abort the process.
    all_logits=True keeps every position's logits (for `logits(ids)`); decoding needs only the last."""

    def __init__(self, path, threads=1, all_logits=False):
        import llama_cpp
        if gguf is None:
            raise ExportError("LlamaRunner needs the gguf package: pip install gguf")
        self.max_positions = int(gguf.GGUFReader(path).fields["deepseek2.context_length"].contents())
        self.all_logits = all_logits
        self.llm = llama_cpp.Llama(path, n_ctx=self.max_positions, n_threads=threads, n_threads_batch=threads,
                                   logits_all=all_logits, type_k=0, type_v=0,   # GGML_TYPE_F32 KV cache
                                   flash_attn=False, verbose=False)
        self.V = self.llm.n_vocab()
        self.pos = 0

    def reset(self):
        self.llm.reset()
        self.pos = 0

    def prefill(self, ids):
        """Start a new sequence with ids (T,) -> logits of the last position (V,)."""
        self.reset()
        self._eval(ids)
        return self._last()

    def step(self, token):
        """Append one token at the current position -> its logits (V,)."""
        self._eval([token])
        return self._last()

    def logits(self, ids):
        """A new sequence, every position's logits (T, V) from one batch evaluation (needs all_logits)."""
        if not self.all_logits:
            raise ValueError("LlamaRunner.logits needs all_logits=True")
        self.reset()
        self._eval(ids)
        return np.array(self.llm.scores[:self.pos], np.float32)

    def close(self):
        if self.llm is not None:
            self.llm.close()
            self.llm = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _eval(self, ids):
        ids = [int(i) for i in np.asarray(ids).reshape(-1)]
        if self.pos + len(ids) > self.max_positions:
            raise ContextOverflowError(f"{self.pos + len(ids)} tokens exceed the context of {self.max_positions}")
        bad = [i for i in ids if not 0 <= i < self.V]
        if bad:
            raise ValueError(f"token id {bad[0]} is outside the vocabulary (0..{self.V - 1})")
        self.llm.eval(ids)                       # llama.cpp evaluates the tokens (llama_cpp.Llama.eval)
        self.pos += len(ids)

    def _last(self):
        ptr = self.llm._ctx.get_logits_ith(-1)                                  # float* of V values
        return np.ctypeslib.as_array(ptr, shape=(self.V,)).copy()
