"""The planner's curated vocabulary: styles (instruments, tempo range, uses, title nouns) and moods (words
for prompts and titles, the keys that suit them).

Curated by hand, not generated, so every word a title or prompt can hold was read by a person: titles come
only from `Mood.title_words` × `Style.title_nouns`, which is why no title is offensive or a "Track 17".
The pipeline may not import the engine's style tables, so these are the planner's own. To add a style or a
mood, add an entry here (CONTRIBUTING.md "Plan a catalog"); tests/tasks/intake/planning checks the lists.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class Style:
    """One style: `genre` as a prompt names it, its `tags`, the `instruments` a prompt picks three of,
    its natural `tempo` (BPM, inclusive), the `uses` a library sells it for, `textures` (arrangement
    phrases) and the nouns its titles are built from."""

    name: str
    genre: str
    tags: tuple[str, ...]
    instruments: tuple[str, ...]
    tempo: tuple[int, int]
    uses: tuple[str, ...]
    textures: tuple[str, ...]
    title_nouns: tuple[str, ...]


@dataclass(frozen=True)
class Mood:
    """One mood: `adjectives` describe it in a prompt, `title_words` open a title, `keys` suit it."""

    name: str
    adjectives: tuple[str, ...]
    title_words: tuple[str, ...]
    keys: tuple[str, ...]
    keywords: tuple[str, ...]


MAJOR_KEYS = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MINOR_KEYS = ("Cm", "C#m", "Dm", "Ebm", "Em", "Fm", "F#m", "Gm", "G#m", "Am", "Bbm", "Bm")

_STYLES = (
    Style("corporate", "corporate pop", ("corporate", "business", "pop"),
          ("clean electric guitar", "felt piano", "plucked synth", "warm pads", "claps", "light kick and snare",
           "muted guitar arpeggio", "bright bells", "synth bass"),
          (92, 126),
          ("a product explainer", "a company presentation", "a brand film", "an onboarding video",
           "a startup pitch", "a training module", "a quarterly results video"),
          ("building to a confident chorus", "with a clean intro and a clear ending",
           "layered arpeggios over a steady groove", "sparse verses opening into a full chorus"),
          ("Horizon", "Momentum", "Milestone", "Skyline", "Blueprint", "Pathway", "Summit", "Venture", "Network",
           "Keystone", "Daybreak", "Compass", "Framework", "Ascent", "Harbor", "Lighthouse", "Bridges", "Outlook")),
    Style("tech", "modern tech electronica", ("tech", "electronic", "innovation"),
          ("pulsing synth arpeggios", "glitchy percussion", "deep sub bass", "airy pads", "digital plucks",
           "processed vocal chops", "tight electronic drums", "filtered synth stabs"),
          (96, 128),
          ("a software launch", "an app demo", "a data visualisation", "a tech keynote", "a product reveal",
           "a cybersecurity explainer", "a futuristic trailer"),
          ("with crisp sequenced layers", "building through filter sweeps", "tight and minimal with a big drop",
           "evolving pulses over a steady beat"),
          ("Circuit", "Signal", "Pixel", "Vector", "Protocol", "Interface", "Quantum", "Cloud", "Matrix", "Orbit",
           "Algorithm", "Pulse", "Catalyst", "Frontier", "Bandwidth", "Grid", "Prism", "Voltage")),
    Style("ambient", "ambient soundscape", ("ambient", "atmospheric", "background"),
          ("soft evolving pads", "granular textures", "distant piano", "gentle drones", "field-recording ambience",
           "shimmering guitar swells", "warm analog synth", "glass harmonics"),
          (60, 100),
          ("a wellness app", "a meditation session", "a nature documentary", "a museum installation",
           "a calm product walkthrough", "a podcast background", "a spa commercial"),
          ("slowly unfolding without drums", "wide and spacious with long tails", "layered drones that breathe",
           "minimal and weightless"),
          ("Tides", "Drift", "Haze", "Stillness", "Glacier", "Meadow", "Lantern", "Vapor", "Dunes", "Aurora",
           "Reverie", "Echoes", "Shoreline", "Canopy", "Moonrise", "Clearing", "Valley", "Mist")),
    Style("cinematic", "cinematic orchestral", ("cinematic", "orchestral", "score"),
          ("soaring strings", "french horns", "taiko drums", "piano ostinato", "choir pads", "timpani",
           "cello melody", "brass swells"),
          (70, 130),
          ("a film trailer", "a documentary opening", "a charity appeal", "an award ceremony",
           "a sports highlight reel", "a historical drama", "a game menu"),
          ("building to a full orchestral climax", "with a quiet opening and a grand finish",
           "driving ostinatos under a broad theme", "rising in waves of strings and brass"),
          ("Legacy", "Kingdom", "Odyssey", "Valor", "Frontier", "Citadel", "Empire", "Voyage", "Anthem",
           "Summit", "Chronicle", "Tempest", "Crown", "Guardian", "Dawnfall", "Banners", "Triumph", "Epoch")),
    Style("lofi", "lo-fi hip hop", ("lofi", "chill", "hip hop"),
          ("dusty drum loop", "mellow rhodes", "vinyl crackle", "jazzy guitar chords", "warm upright bass",
           "muted trumpet", "soft tape-saturated keys", "lazy snare brushes"),
          (70, 95),
          ("a study stream", "a cafe playlist", "a cooking video", "a vlog", "a travel diary",
           "a cosy game", "a late-night coding session"),
          ("looped and laid back with a gentle swing", "with tape wobble and soft edges",
           "relaxed head-nodding groove", "hazy chords over a steady beat"),
          ("Window", "Notebook", "Rooftop", "Sunday", "Coffee", "Streetlight", "Polaroid", "Cassette", "Alley",
           "Balcony", "Bookshop", "Raincoat", "Tram", "Postcard", "Corner", "Teacup", "Lamplight", "Porch")),
    Style("acoustic", "acoustic folk", ("acoustic", "folk", "organic"),
          ("fingerpicked acoustic guitar", "ukulele", "hand claps", "glockenspiel", "stomps", "mandolin",
           "upright piano", "light tambourine"),
          (80, 124),
          ("a family commercial", "a travel campaign", "a food brand", "a lifestyle vlog", "a wedding video",
           "a community story", "an outdoor gear ad"),
          ("warm and organic with a singable melody", "building from solo guitar to the full band",
           "bouncy strums with hand percussion", "gentle verses and a hearty chorus"),
          ("Orchard", "Campfire", "Meadowlark", "Homestead", "Riverbank", "Wildflower", "Countryside", "Hillside",
           "Sunflower", "Harvest", "Trailhead", "Picnic", "Cabin", "Backroad", "Willow", "Pinecone", "Brook",
           "Hearth")),
    Style("house", "deep house", ("house", "electronic", "dance"),
          ("four-on-the-floor kick", "warm chord stabs", "rolling bassline", "shuffled hi-hats", "lush pads",
           "soulful organ", "filtered piano", "crisp claps"),
          (116, 128),
          ("a fashion show", "a fitness video", "a nightlife promo", "a car commercial", "a product launch party",
           "a retail playlist", "an urban lifestyle ad"),
          ("steady groove with filtered builds", "with a long intro and a deep breakdown",
           "hypnotic and rolling", "stripped-back beat blooming into full chords"),
          ("Nightfall", "Neon", "Velvet", "Boulevard", "Midnight", "Afterglow", "Rooftops", "Citylights", "Motion",
           "Lounge", "Silhouette", "Riviera", "Sunset", "Highline", "Marina", "Downtown", "Starlight", "Mirage")),
    Style("rock", "indie rock", ("rock", "indie", "guitar"),
          ("overdriven electric guitars", "punchy live drums", "driving bass guitar", "jangly rhythm guitar",
           "gang vocals chant", "organ swells", "tambourine", "palm-muted riffs"),
          (100, 140),
          ("a sports promo", "an extreme sports edit", "a car commercial", "a youth brand campaign",
           "a festival teaser", "a gaming montage", "a road trip vlog"),
          ("big guitars from the first bar", "building from palm-muted verses to an open chorus",
           "raw and energetic with live feel", "anthemic with a stadium-sized hook"),
          ("Wildfire", "Highway", "Thunder", "Rebel", "Overdrive", "Skyline", "Spark", "Engine", "Runaway",
           "Daylight", "Amplifier", "Breakout", "Freeway", "Rocket", "Riot", "Uprising", "Lightning", "Avalanche")),
    Style("jazz", "jazz", ("jazz", "lounge", "smooth"),
          ("upright bass", "brushed drums", "warm jazz piano", "muted trumpet", "tenor saxophone",
           "hollow-body guitar", "vibraphone", "flugelhorn"),
          (70, 140),
          ("a restaurant ambience", "a hotel lobby", "a luxury brand", "a cocktail bar scene", "a period drama",
           "a bookshop video", "a wine tasting"),
          ("small-combo swing with tasteful solos", "relaxed brushes and walking bass",
           "smoky and intimate", "easy groove with a lyrical melody"),
          ("Avenue", "Martini", "Velour", "Brownstone", "Saxophone", "Parlor", "Evening", "Manhattan", "Tuxedo",
           "Moonlight", "Speakeasy", "Lounge", "Serenade", "Uptown", "Cafe", "Ballroom", "Gallery", "Cellar")),
    Style("hiphop", "hip hop", ("hip hop", "urban", "beats"),
          ("hard-hitting drums", "808 bass", "chopped soul sample", "crisp hi-hat rolls", "dark piano loop",
           "synth brass", "scratch effects", "orchestral hits"),
          (80, 100),
          ("a streetwear ad", "a sports brand film", "a music video intro", "a skateboarding edit",
           "an urban documentary", "a sneaker launch", "a basketball highlight"),
          ("head-nodding boom bap pocket", "sparse verses and a heavy hook", "gritty and confident",
           "bouncing 808s under a looped melody"),
          ("Blocks", "Concrete", "Hustle", "Crown", "Pavement", "Subway", "Cipher", "Hoodie", "Boombox", "Courtside",
           "Graffiti", "Stoop", "Skyway", "Crosstown", "Mixtape", "Turntable", "Corners", "Kicks")),
)

_MOODS = (
    Mood("uplifting", ("uplifting", "bright", "optimistic", "feel-good"),
         ("Bright", "Golden", "Rising", "Sunlit", "Open", "Brave", "Clear", "New", "Shining", "Soaring", "Vivid",
          "Radiant", "Higher", "Fresh"),
         MAJOR_KEYS, ("uplifting", "positive", "optimistic")),
    Mood("calm", ("calm", "gentle", "soothing", "peaceful"),
         ("Quiet", "Soft", "Gentle", "Still", "Slow", "Silver", "Pale", "Hushed", "Easy", "Tender", "Velvet",
          "Mellow", "Distant", "Floating"),
         MAJOR_KEYS + MINOR_KEYS, ("calm", "relaxed", "peaceful")),
    Mood("inspiring", ("inspiring", "hopeful", "motivational", "heartfelt"),
         ("Infinite", "Boundless", "Endless", "Limitless", "Wide", "True", "Noble", "Steady", "Bold", "Great",
          "Promised", "Everlasting", "Open", "Dreaming"),
         MAJOR_KEYS, ("inspiring", "motivational", "hopeful")),
    Mood("energetic", ("energetic", "driving", "punchy", "vibrant"),
         ("Electric", "Fast", "Wild", "Burning", "Rapid", "Racing", "Charged", "Bouncing", "Loud", "Kinetic",
          "Flying", "Blazing", "Sudden", "Restless"),
         MAJOR_KEYS + MINOR_KEYS, ("energetic", "powerful", "action")),
    Mood("reflective", ("reflective", "thoughtful", "wistful", "nostalgic"),
         ("Faded", "Far", "Hidden", "Late", "Lost", "Old", "Autumn", "Winter", "Evening", "Second", "Paper",
          "Grey", "Remembered", "Quiet"),
         MINOR_KEYS + MAJOR_KEYS, ("reflective", "nostalgic", "emotional")),
    Mood("playful", ("playful", "quirky", "cheerful", "light-hearted"),
         ("Happy", "Little", "Lucky", "Silly", "Sunny", "Merry", "Bubbly", "Jolly", "Sweet", "Tiny", "Busy",
          "Curious", "Cheeky", "Bouncy"),
         MAJOR_KEYS, ("playful", "fun", "cheerful")),
    Mood("dramatic", ("dramatic", "tense", "suspenseful", "powerful"),
         ("Dark", "Iron", "Broken", "Shadow", "Fallen", "Crimson", "Stormy", "Final", "Hollow", "Silent", "Burning",
          "Endless", "Frozen", "Grand"),
         MINOR_KEYS, ("dramatic", "tense", "epic")),
    Mood("confident", ("confident", "determined", "bold", "assured"),
         ("Strong", "Steady", "Prime", "Solid", "Direct", "First", "Sharp", "Bold", "Upward", "Main", "Straight",
          "Firm", "Royal", "Proud"),
         MAJOR_KEYS + MINOR_KEYS, ("confident", "determined", "strong")),
)

STYLES: Mapping[str, Style] = MappingProxyType({s.name: s for s in _STYLES})
MOODS: Mapping[str, Mood] = MappingProxyType({m.name: m for m in _MOODS})
