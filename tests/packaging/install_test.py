#!/usr/bin/env python3
"""`cmake --install` into a temporary DESTDIR, at the default prefix (/usr/local) and at /usr:
the binary runs, the six man pages render with their options, the completion is in place, the
units and deploy/ examples name the installed binary, install_manifest.txt lists exactly what
was installed, and `make uninstall` removes all of it.

Usage: install_test.py BUILD_DIR
"""

import gzip
import os
import sys
import tempfile

from checks import MAN_PAGES, ROOT, check, finish, run

UNITS = ["zen.service", "zen.socket", "zen-accept.socket", "zen-accept@.service"]


def installed_files(destdir):
    found = set()
    for directory, _, names in os.walk(destdir):
        found.update(os.path.join(directory, name) for name in names)
    return found


def check_install(build, prefix):
    with tempfile.TemporaryDirectory() as destdir:
        done = run(["cmake", "--install", build, "--prefix", prefix], env=dict(os.environ, DESTDIR=destdir))
        check(done.returncode == 0, f"cmake --install --prefix {prefix}: {done.returncode} {done.stderr}")
        root = destdir + prefix

        zen = os.path.join(root, "bin", "zen")
        check(os.access(zen, os.X_OK), f"{zen} is not executable")
        version = run([zen, "--version"])
        check(version.returncode == 0 and version.stdout.splitlines()[:1] == ["zen 0.1.0"], f"installed zen --version: {version}")

        for page in MAN_PAGES:
            path = os.path.join(root, "share", "man", "man1", f"{page}.1.gz")
            if not check(os.path.exists(path), f"{path} missing"):
                continue
            with gzip.open(path, "rt") as f:
                source = f.read()
            check(f'.TH {page.upper()} "1"' in source, f"{page}.1 has no .TH {page.upper()}")
            # man-db renders it; --warnings makes groff report what it could not typeset.
            shown = run(["man", "--warnings", "-l", path], env=dict(os.environ, MANPAGER="cat", MANWIDTH="100"))
            check(shown.returncode == 0 and not shown.stderr.strip(), f"man -l {page}.1: {shown.stderr}")
            check("SEE ALSO" in shown.stdout, f"{page}.1 has no SEE ALSO")
            if page == "zen-serve":
                for word in ["--arch", "reuseport", "--max-question", "--proxy-protocol", "0.1.0"]:
                    check(word in shown.stdout, f"zen-serve(1) does not mention {word}")
            if page == "zen":
                for word in ["serve", "client", "bench", "streamer", "blocks"]:
                    check(word in shown.stdout, f"zen(1) does not name {word}")

        completion = os.path.join(root, "share", "bash-completion", "completions", "zen")
        check(os.path.exists(completion), "no bash completion installed")

        binary = f"{prefix}/bin/zen"
        for unit in UNITS:
            path = os.path.join(root, "lib", "systemd", "system", unit)
            if not check(os.path.exists(path), f"{path} missing"):
                continue
            with open(path) as f:
                text = f.read()
            if unit.endswith(".service"):
                check(f"ExecStart={binary} serve" in text, f"{unit} does not start {binary}: {text}")
                check("User=zen" in text, f"{unit} does not run as zen")
        examples = os.path.join(root, "share", "doc", "zen", "examples")
        for example in ["inetd.conf", "xinetd.d/zen", "supervisord/zen.conf", "haproxy.cfg", "Dockerfile",
                        "systemd/zen.service"]:
            check(os.path.exists(os.path.join(examples, example)), f"examples/{example} missing")
        with open(os.path.join(examples, "inetd.conf")) as f:
            check(f" {binary} zen serve --inetd" in f.read(), f"examples/inetd.conf does not name {binary}")
        for name in ["README.md", "deploy.md", "copyright", "changelog.gz"]:
            check(os.path.exists(os.path.join(root, "share", "doc", "zen", name)), f"share/doc/zen/{name} missing")
        if prefix != "/usr/local":
            for path in installed_files(destdir):
                if "/systemd/" in path or "/examples/" in path:
                    with open(path, "rb") as f:
                        check(b"/usr/local" not in f.read(), f"{path} still names /usr/local")

        # The manifest CMake wrote (paths without DESTDIR), which `make install` keeps with DESTDIR
        # in for `make uninstall`.
        with open(os.path.join(build, "install_manifest.txt")) as f:
            manifest = {destdir + path for path in f.read().split("\n") if path}
        check(manifest == installed_files(destdir),
              f"install_manifest.txt and the files differ: {sorted(manifest ^ installed_files(destdir))}")
        with tempfile.TemporaryDirectory() as copy:
            with open(os.path.join(copy, "zen_install_manifest.txt"), "w") as f:
                f.write("".join(path + "\n" for path in sorted(manifest)))
            done = run(["make", "-C", ROOT, "uninstall", f"BUILD_DIR={copy}"])
            check(done.returncode == 0, f"make uninstall: {done.stdout} {done.stderr}")
        left = installed_files(destdir)
        check(not left, f"make uninstall left {sorted(left)}")


def main():
    build = os.path.abspath(sys.argv[1])
    check_install(build, "/usr/local")
    check_install(build, "/usr")
    finish("install_test")


if __name__ == "__main__":
    main()
