"""Makes Toil resolve `jobstored:` job-store locators, in every Python process.

Toil 9.6 has no job-store plugin hook: `Toil.getJobStore` knows file:, aws: and google:. The
package installs `jobstore-toil.pth`, which imports this module (not the `jobstore` package) at start-up. It
costs one entry in `sys.meta_path` and imports nothing: when (and only if) a process imports
`toil.common`, the entry wraps `Toil.getJobStore` so that `jobstored:LOCATOR` gives a
`jobstore.toil.DaemonJobStore(LOCATOR)`. Leader and worker processes alike are covered,
because workers are new Python processes that read the same .pth file.
"""
import importlib.abc
import importlib.machinery
import sys

SCHEME = "jobstored"


def _patch(common) -> None:
    toil_class = common.Toil
    if getattr(toil_class, "_jobstored_patched", False):
        return
    original = toil_class.getJobStore.__func__

    def getJobStore(cls, locator: str):
        name, rest = cls.parseLocator(locator)
        if name == SCHEME:
            from jobstore.toil import DaemonJobStore

            return DaemonJobStore(rest)
        return original(cls, locator)

    toil_class.getJobStore = classmethod(getJobStore)
    toil_class._jobstored_patched = True


class _ToilCommonFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "toil.common":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader_exec = spec.loader.exec_module

        def exec_module(module):
            loader_exec(module)
            _patch(module)

        spec.loader.exec_module = exec_module
        return spec


def install() -> None:
    if "toil.common" in sys.modules:
        _patch(sys.modules["toil.common"])
    elif not any(isinstance(f, _ToilCommonFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _ToilCommonFinder())


install()
