"""The world's languages, one module each: to add a language, add a pack and list it here."""

from mixmerge.world.pack import LanguagePack
from mixmerge.world.packs import ar, en, es, fr, hi, ru

PACKS: dict[str, LanguagePack] = {p.PACK.code: p.PACK for p in (en, fr, es, hi, ar, ru)}
