"""Asset links signed when they are read, never at search time.

Planetary Computer serves its assets from Azure Blob Storage behind short-lived SAS
tokens. A link signed at search time expires while the run still needs it (a long
fuse, a resumed run, the flows' cached search), so search results keep the
catalogue's *unsigned* hrefs (``items.json`` holds no token) and the readers call an
:class:`AssetSigner` on each href right before they open it, inside the read task on
the worker. ``planetary_computer.sign`` keeps one token per storage container and
fetches a new one shortly before it expires, so a long run keeps reading.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pipeline.config_stac import StacSpec
from pipeline.errors import InputError

HrefSigner = Callable[[str], str]


def _planetary_computer(href: str) -> str:
    """``href`` with a fresh SAS token if it is an Azure blob URL; any other href unchanged."""
    import planetary_computer  # checked by check_signers before any read

    return str(planetary_computer.sign(href))


#: Signing scheme (``stac.signing``) -> href signer. Looked up by name at call time, so
#: the :class:`AssetSigner` in a Dask graph pickles as a name, not as a function.
SIGNERS: dict[str, HrefSigner] = {"planetary-computer": _planetary_computer}

#: The package each scheme needs, and the extra that installs it.
_PACKAGES = {"planetary-computer": ("planetary_computer", "planetary")}


@dataclass(frozen=True)
class AssetSigner:
    """Signs asset hrefs with every scheme a run's endpoints use (picklable, by name).

    Attributes
    ----------
    schemes : ``stac.signing`` values other than ``none``, sorted. Each scheme's
        signer leaves hrefs it does not serve unchanged (Planetary Computer signs only
        Azure blob URLs), so one signer serves a run whose collections come from
        different endpoints.
    """

    schemes: tuple[str, ...] = ()

    def __call__(self, href: str) -> str:
        for scheme in self.schemes:
            href = SIGNERS[scheme](href)
        return href

    def __bool__(self) -> bool:
        return bool(self.schemes)


def asset_signer(stac: StacSpec) -> AssetSigner:
    """The signer of a run's endpoints (empty, a no-op, when none signs)."""
    return AssetSigner(tuple(sorted(stac.signings)))


def check_signers(stac: StacSpec) -> None:
    """Refuse, before any search, a signing scheme whose package is not installed.

    Raises
    ------
    InputError
        Names the scheme and the ``pip install`` that provides it.
    """
    import importlib.util

    for scheme in sorted(stac.signings):
        module, extra = _PACKAGES[scheme]
        if scheme in SIGNERS and SIGNERS[scheme] is not _planetary_computer:
            continue  # a signer injected in place of the package's (tests)
        if importlib.util.find_spec(module) is None:
            raise InputError(
                f"stac.signing: {scheme} needs the {module.replace('_', '-')} package; "
                f"pip install 'stf-pipeline[{extra}]'"
            )
