# Run inside a new image (python -c, argument: the app's entry file) before it
# may serve: Chainlit's data layer needs asyncpg, the schema migrations are made
# for one chainlit version, and an app that does not import cannot start.
import importlib.metadata
import json
import runpy
import sys
import traceback

result = {"problems": []}
try:
    import asyncpg

    result["asyncpg"] = asyncpg.__version__
except Exception as error:  # every failure is a finding
    result["problems"].append(
        f"asyncpg does not import ({error!r}): Chainlit's data layer needs it; "
        "add asyncpg to the app's requirements.txt"
    )
try:
    result["chainlit"] = importlib.metadata.version("chainlit")
except importlib.metadata.PackageNotFoundError:
    result["problems"].append("chainlit is not installed: add it to requirements.txt")
try:
    runpy.run_path(sys.argv[1], run_name="__chainlit_deploy_check__")
except BaseException as error:  # SystemExit included
    last = "".join(traceback.format_exception_only(type(error), error)).strip()
    result["problems"].append(
        f"the app's {sys.argv[1]} does not import ({last.splitlines()[-1]}): "
        "fix the app, or set chainlit_app_module to its entry file"
    )
print("CHAINLIT_DEPLOY_CHECK " + json.dumps(result))
