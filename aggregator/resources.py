"""Where the folders shipped beside the code are found: page templates and prompts.

A wheel carries them inside the package (``aggregator/templates``, ``aggregator/prompts``); a
source checkout or an editable install has them only at the repository's top level, where editors
keep them. Either way they are folders on disk, which jinja2's FileSystemLoader needs: pip always
unpacks a wheel into site-packages. Importing the package from a zip archive is not supported;
there the lookup fails with a message instead of a template going missing later.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Literal

from aggregator.errors import UserError

_CHECKOUT = Path(__file__).resolve().parent.parent  # the repository, in a source checkout


def shipped_dir(name: Literal["templates", "prompts"]) -> Path:
    """The installed package's copy of the folder, else the source checkout's top-level one."""
    packaged = files("aggregator") / name
    if isinstance(packaged, Path) and packaged.is_dir():
        return packaged.resolve()
    checkout = _CHECKOUT / name
    if checkout.is_dir():
        return checkout
    raise UserError(
        f"aggregator's {name}/ folder is missing: neither {packaged} nor {checkout} exists; "
        "reinstall the package (pip install aggregator, or pip install -e . in a checkout)"
    )


def template_dirs(custom: Path | None = None) -> tuple[Path, ...]:
    """Template folders in lookup order: the editor's own (it must exist), then the shipped one.

    An editor's folder needs only the templates it changes; the rest come from the package.
    """
    shipped = shipped_dir("templates")
    if custom is None:
        return (shipped,)
    if not custom.is_dir():
        raise UserError(
            f"templates_dir: {custom} is not a folder; create it or correct templates_dir "
            "in the settings"
        )
    return (custom.resolve(), shipped)
