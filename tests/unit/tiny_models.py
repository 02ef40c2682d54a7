"""Tiny random backbones of each supported architecture, with tokenizers trained here by `tokenizers`.

Nothing is downloaded: the tokenizer is a byte-level BPE (or a WordPiece for the BERT-like encoder) trained on a
few sentences, wrapped in ``PreTrainedTokenizerFast`` and saved beside the model, so ``load_backbone(dir)`` works.
"""

from __future__ import annotations

from pathlib import Path

SENTENCES = [
    "the cat sat on the mat and looked at the dog",
    "dense retrieval encodes queries and passages into vectors",
    "a decoder only language model can be turned into an embedding model",
    "bidirectional attention lets every token see every other token",
    "scientific claims are verified against abstracts of papers",
    "proteins fold into shapes that decide what they do in the cell",
] * 3

DECODERS = ("llama", "mistral", "qwen2", "phi", "gpt2", "gemma3")


def train_tokenizer(encoder_style: bool = False):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if encoder_style:
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
        specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        tok.train_from_iterator(SENTENCES, trainers.WordPieceTrainer(vocab_size=200, special_tokens=specials))
        cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)]
        )
        tok.decoder = decoders.WordPiece()
        return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                       cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<pad>", "<eos>", "<bos>"]
    tok.train_from_iterator(
        SENTENCES, trainers.BpeTrainer(vocab_size=300, special_tokens=specials,
                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    )
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<pad>", bos_token="<bos>")


def tiny_config(arch: str, vocab_size: int):
    import transformers as tf

    common = dict(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=4, max_position_embeddings=128, pad_token_id=0, eos_token_id=1, bos_token_id=2)
    if arch == "llama":
        return tf.LlamaConfig(num_key_value_heads=2, **common), tf.LlamaForCausalLM
    if arch == "mistral":
        return tf.MistralConfig(num_key_value_heads=2, sliding_window=None, **common), tf.MistralForCausalLM
    if arch == "qwen2":
        return tf.Qwen2Config(num_key_value_heads=2, **common), tf.Qwen2ForCausalLM
    if arch == "phi":
        return tf.PhiConfig(**common), tf.PhiForCausalLM
    if arch == "gpt2":
        return tf.GPT2Config(vocab_size=vocab_size, n_embd=32, n_layer=2, n_head=4, n_positions=128,
                             pad_token_id=0, eos_token_id=1, bos_token_id=2), tf.GPT2LMHeadModel
    if arch == "gemma3":
        return tf.Gemma3TextConfig(num_key_value_heads=2, head_dim=8, sliding_window=4, **common), tf.Gemma3ForCausalLM
    if arch == "bert":
        return tf.BertConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=4, max_position_embeddings=128, pad_token_id=0), tf.BertModel
    raise ValueError(arch)


def make_tiny_model(directory: Path, arch: str = "llama", seed: int = 0, tied: bool = False,
                    max_positions: int = 128) -> Path:
    """Save a tiny random ``arch`` model and its tokenizer into ``directory``; returns it.

    ``tied``: tied input/output embeddings, as SmolLM2 has (LLaRA's new token rows then reach the LM head through
    peft's tied trainable tokens); ``max_positions``: room for prompted training rows.
    """
    import torch

    tokenizer = train_tokenizer(encoder_style=arch == "bert")
    config, cls = tiny_config(arch, len(tokenizer))
    if tied:
        config.tie_word_embeddings = True
    if hasattr(config, "max_position_embeddings"):
        config.max_position_embeddings = max_positions
    torch.manual_seed(seed)
    model = cls(config)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
