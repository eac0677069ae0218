"""The app profiles: the names of one app, as data.

A profile (`auditor/profiles/NAME.yaml`, or a file of one's own) gives one app's
names: queues, roles with their containers and log markers, the variables its
region and keys come from, and the words its remedies use. `auditor: {profile:
NAME | PATH | none}` chooses one (default: `academy`, the reference deployment);
nothing of another profile applies. The inventory's `auditor:` layers are
merged over it, and null removes an inherited entry (`queues: {video: null}`).
"""
from pathlib import Path

PROFILES = Path(__file__).parent / "profiles"
DEFAULT_PROFILE = "academy"     # Settings.profile's default too

_LOADED = {}


def profile_path(choice):
    """The file of a profile named in the inventory: a name under auditor/profiles, or a path."""
    if "/" in choice or choice.endswith((".yaml", ".yml")):
        return Path(choice).expanduser()
    return PROFILES / (choice + ".yaml")


def shipped_profiles():
    return sorted(path.stem for path in PROFILES.glob("*.yaml"))


def load_profile(choice, loader):
    """A profile's settings (a mapping, read once per process with `loader`, the inventory's YAML
    reader, so its errors name the profile's file and line); {} for `none`."""
    if choice in (None, "none"):
        return {}
    if choice not in _LOADED:
        _LOADED[choice] = loader(profile_path(choice))
    return _LOADED[choice]
