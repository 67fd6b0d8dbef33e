# Run inside a release's image (python -c, with the app's .env and the image's
# working directory, no network) before its container starts: whether the app
# can run on a read-only root filesystem. Chainlit writes these at startup
# when they are missing (chainlit/config.py init_config, chainlit/markdown.py
# init_markdown), in its app root: CHAINLIT_APP_ROOT, else the working
# directory. It also makes <root>/.files for uploads, which the release mounts
# as a tmpfs. chainlit is found, not imported: importing it writes the files.
import importlib.util
import json
import os
from pathlib import Path

root = Path(os.environ.get("CHAINLIT_APP_ROOT") or Path.cwd())
result = {"root": str(root), "missing": []}
spec = importlib.util.find_spec("chainlit")
if spec is None or not spec.submodule_search_locations:
    result["missing"].append("chainlit itself: it is not installed")
else:
    translations = Path(next(iter(spec.submodule_search_locations))) / "translations"
    result["missing"] = [
        path for path in (".chainlit/config.toml", "chainlit.md") if not (root / path).exists()
    ]
    names = [p.name for p in translations.glob("*.json")]
    absent = [n for n in names if not (root / ".chainlit/translations" / n).exists()]
    if absent:
        result["missing"].append(f".chainlit/translations/ ({len(absent)} of {len(names)} files)")
print("CHAINLIT_ROOT_CHECK " + json.dumps(result))
