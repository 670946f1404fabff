"""Small built-in word lists for keys and names, so generators need no download."""

from __future__ import annotations


def _split(text: str) -> tuple[str, ...]:
    """A word list written compactly as one space-separated string."""
    return tuple(text.split(" "))


ADJECTIVES = _split(
    "abrupt agile amber ancient ashen autumn bashful bitter blazing bold brave breezy brisk bronze "
    "calm candid careful cheerful chilly clever cloudy coastal cobalt crimson crisp curious daring "
    "dusty eager early earnest electric elegant emerald fabled faint fearless fervent fickle fierce "
    "flinty fragrant frosty gentle giant gilded glassy gleaming golden graceful grand granite hasty "
    "hidden hollow honest humble icy idle indigo ivory jade jolly keen kindly lavish lively lofty "
    "loyal lucky lunar marble mellow merry misty modest molten mossy narrow nimble noble obscure "
    "ochre olive opal pale patient placid plucky polar proud quaint quick quiet radiant rapid rustic "
    "sable scarlet serene shady silent silver sleek slender smoky solar sombre spare spry stark "
    "steady stormy sturdy subtle sunny swift tawny tender thorny tidal timid tranquil twilight umber "
    "valiant velvet verdant vivid wary wild windy wintry wise witty woven young zealous"
)

NOUNS = _split(
    "acorn anchor anvil arch arrow aspen atlas badge ballad barley basin beacon birch bison blossom "
    "bramble bridge brook bucket cabin canal candle canyon cargo castle cedar chapel cinder citadel "
    "clover comet compass copper coral cottage crater crest cricket crown cypress delta dune eagle "
    "ember falcon fern ferry fjord flint forge fountain galaxy garnet glacier grove harbor harp hazel "
    "heron hollow horizon island ivy jasper kettle kestrel lagoon lantern ledger lichen lily maple "
    "marsh meadow mesa mill minnow mirror monsoon orchard otter paddle pebble pepper pier pine plume "
    "prairie quarry quill raven reef ridge river robin saddle sapphire sequoia shore sparrow spire "
    "spruce summit swallow thicket thistle timber torrent tower trellis tulip tundra valley violet "
    "walnut willow wren yarrow zephyr"
)
