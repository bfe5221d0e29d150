"""Tiny, randomly initialised CLIP-vision, Whisper and XLM-R style models with their processors.

Written with ``save_pretrained`` to a local directory so tests and the offline demo exercise
the same ``from_pretrained`` path as the real Hub models. Everything is built locally (no
network): the XLM-R style tokenizer is a Unigram (SentencePiece-like) model whose vocabulary
is counted from a small multilingual corpus covering the SPEC w=10 languages.
Same seed -> byte-identical files.
"""
from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import torch

from symile_data.io.atomic import atomic_write_json

# Short sentences in every SPEC language (w=10 list) so the tokenizer covers each script.
CORPUS = [
    "the dog runs in the park", "a small bird sings", "crane machine and crane bird",
    "ο σκύλος τρέχει στο πάρκο", "ένα μικρό πουλί τραγουδά", "γερανός και πουλί",
    "कुत्ता पार्क में दौड़ता है", "एक छोटी चिड़िया गाती है", "सारस पक्षी",
    "犬は公園で走る", "小さな鳥が歌う", "クレーンと鶴",
    "собака біжить у парку", "маленька пташка співає", "журавель і кран",
    "الكلب يركض في الحديقة", "طائر صغير يغني", "رافعة وطائر الكركي",
    "개가 공원에서 달린다", "작은 새가 노래한다", "크레인과 두루미",
    "కుక్క పార్కులో పరిగెడుతుంది", "చిన్న పక్షి పాడుతుంది", "కొంగ పక్షి",
    "สุนัขวิ่งในสวน", "นกตัวเล็กร้องเพลง", "นกกระเรียน",
    "狗在公园里跑", "小鸟在唱歌", "起重机和鹤", "swimsuit_μαγιό_स्विमसूट_水着",
]
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # XLM-R ids 0..4 order (pad = 1)

# Tiny architecture sizes: enough to run the real forward code, small enough for 2 CPU cores.
IMAGE_SIZE = 32      # pixels (square); ViT patches of 8 -> 16 patches + CLS
WHISPER_MELS = 80    # mel bins (large-v3 uses 128; the extractor follows the config)
HIDDEN = 32          # width of every tiny transformer


def build_tokenizer():
    """A Unigram (SentencePiece-style) XLM-R tokenizer whose vocabulary is built from CORPUS.

    Pieces: every character, and every word with the "▁" word-start marker; score =
    log relative frequency. Built by counting (not by the ``tokenizers`` trainer, whose
    tie-breaking is not deterministic across runs), sorted by (-score, piece).
    """
    from transformers import XLMRobertaTokenizer

    counts: Counter[str] = Counter()
    for sentence in CORPUS:
        for word in sentence.replace("_", " _ ").split():
            counts["▁" + word] += 1
            counts.update(word)
    counts["▁"] += len(CORPUS)
    total = sum(counts.values())
    scored = sorted(((round(math.log(c / total), 6), p) for p, c in counts.items()),
                    key=lambda t: (-t[0], t[1]))
    vocab = [(s, 0.0) for s in SPECIALS] + [(p, s) for s, p in scored]
    return XLMRobertaTokenizer(vocab=vocab, model_max_length=512)


def write_tiny_models(out_dir: str | Path, seed: int = 0) -> dict[str, str]:
    """Write ``clip-vision/``, ``whisper/``, ``xlm-roberta/`` under ``out_dir``.

    Returns {modality: directory}. A ``tiny_models.json`` marker is written last.
    """
    from transformers import (CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel,
                              WhisperConfig, WhisperFeatureExtractor, WhisperModel,
                              XLMRobertaConfig, XLMRobertaModel)

    out = Path(out_dir)
    dirs = {"image": out / "clip-vision", "audio": out / "whisper", "text": out / "xlm-roberta"}

    torch.manual_seed(seed)
    clip = CLIPVisionModel(CLIPVisionConfig(
        hidden_size=HIDDEN, intermediate_size=2 * HIDDEN, num_hidden_layers=2,
        num_attention_heads=2, image_size=IMAGE_SIZE, patch_size=8, projection_dim=HIDDEN))
    clip.save_pretrained(dirs["image"])
    CLIPImageProcessor(size={"shortest_edge": IMAGE_SIZE},
                       crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
                       ).save_pretrained(dirs["image"])

    torch.manual_seed(seed + 1)
    whisper = WhisperModel(WhisperConfig(
        vocab_size=128, num_mel_bins=WHISPER_MELS, d_model=HIDDEN, encoder_layers=2,
        encoder_attention_heads=2, encoder_ffn_dim=2 * HIDDEN, decoder_layers=1,
        decoder_attention_heads=2, decoder_ffn_dim=2 * HIDDEN, max_source_positions=1500,
        max_target_positions=32, pad_token_id=0, bos_token_id=1, eos_token_id=2,
        decoder_start_token_id=1, begin_suppress_tokens=None, suppress_tokens=None))
    whisper.save_pretrained(dirs["audio"])
    WhisperFeatureExtractor(feature_size=WHISPER_MELS, sampling_rate=16000
                            ).save_pretrained(dirs["audio"])

    tokenizer = build_tokenizer()
    torch.manual_seed(seed + 2)
    xlmr = XLMRobertaModel(XLMRobertaConfig(
        vocab_size=len(tokenizer), hidden_size=HIDDEN, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=2 * HIDDEN, max_position_embeddings=514,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=0, eos_token_id=2))
    xlmr.save_pretrained(dirs["text"])
    tokenizer.save_pretrained(dirs["text"])

    result = {k: str(v) for k, v in dirs.items()}
    names = {k: v.name for k, v in dirs.items()}  # relative: the marker is path-independent
    atomic_write_json(out / "tiny_models.json", {"seed": seed, "models": names})
    return result
