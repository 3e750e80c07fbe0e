#!/usr/bin/env python3
"""Writes other quantizations of a GGUF model with llama.cpp's own quantizer (libllama from
npm node-llama-cpp@3.21.1, called through ctypes), so the LLM engine can be checked against
llama.cpp on every tensor type it claims: F16, BF16, Q8_0, Q4_0, Q5_0/Q5_1 (llama.cpp's
fallbacks for K-quants on widths that are not multiples of 256), Q4_K_M, Q5_K_M, Q6_K.

    requantize.py IN.gguf OUTDIR [FTYPE ...]
"""
import ctypes, os, sys

FTYPES = {"F16": 1, "Q4_0": 2, "Q8_0": 7, "Q5_0": 8, "Q5_1": 9, "Q4_K_M": 15, "Q5_K_M": 17, "Q6_K": 18, "BF16": 32}


class Params(ctypes.Structure):
    # llama.h's llama_model_quantize_params at node-llama-cpp 3.21.1's llama.cpp.
    _fields_ = [("nthread", ctypes.c_int32), ("ftype", ctypes.c_int32), ("output_tensor_type", ctypes.c_int32),
                ("token_embedding_type", ctypes.c_int32), ("allow_requantize", ctypes.c_bool),
                ("quantize_output_tensor", ctypes.c_bool), ("only_copy", ctypes.c_bool), ("pure", ctypes.c_bool),
                ("keep_split", ctypes.c_bool), ("dry_run", ctypes.c_bool), ("imatrix", ctypes.c_void_p),
                ("kv_overrides", ctypes.c_void_p), ("tt_overrides", ctypes.c_void_p),
                ("prune_layers", ctypes.c_void_p), ("max_buf_size", ctypes.c_size_t)]


def main():
    src, out = sys.argv[1], sys.argv[2]
    wanted = sys.argv[3:] or list(FTYPES)
    bins = os.path.expanduser("~/.cache/opg/llm/llamacpp/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64")
    ctypes.CDLL(os.path.join(bins, "libggml-base.so"), mode=ctypes.RTLD_GLOBAL)
    ctypes.CDLL(os.path.join(bins, "libggml.v0.4.0.so"), mode=ctypes.RTLD_GLOBAL)
    lib = ctypes.CDLL(os.path.join(bins, "libllama.v0.4.0.so"))
    lib.llama_model_quantize_default_params.restype = Params
    lib.llama_model_quantize.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(Params)]
    lib.llama_model_quantize.restype = ctypes.c_uint32
    lib.llama_backend_init()
    base = os.path.basename(src).rsplit(".", 2)[0]
    for name in wanted:
        p = lib.llama_model_quantize_default_params()
        p.ftype = FTYPES[name]
        p.allow_requantize = True
        p.nthread = 2
        dst = os.path.join(out, f"{base}.{name}.gguf")
        if lib.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(p)) != 0:
            sys.exit(f"llama_model_quantize failed for {name}")
        print(dst)


main()
