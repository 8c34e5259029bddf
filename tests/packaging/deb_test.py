#!/usr/bin/env python3
"""The .deb as `make deb` builds it (CPack, DEB generator), into a directory of its own: lintian
reports no error; its Depends name the package of every library the binary links (found here
with ldd and dpkg -S, apart from dpkg-shlibdeps) and adduser; dpkg-deb -x and -e show the
files, units with /usr/bin/zen, gzipped man pages, maintainer scripts that create the zen user,
enable nothing and remove the user on purge; and the unpacked binary runs --version.

Usage: deb_test.py BUILD_DIR
"""

import glob
import os
import re
import sys
import tempfile

from checks import MAN_PAGES, check, finish, run


def linked_packages(binary):
    """For each library the binary names as NEEDED, the Debian package that holds it and the
    names that package Provides (libspdlog1.10 provides libspdlog1.10-fmt9, the name its shlibs
    file gives dependents)."""
    needed = re.findall(r"NEEDED\s+(\S+)", run(["objdump", "-p", binary]).stdout)
    paths = dict(re.findall(r"^\s*(\S+) => (/\S+)", run(["ldd", binary]).stdout, re.M))
    packages = {}
    for library in needed:
        path = paths.get(library)
        if not check(path is not None, f"ldd does not resolve {library}"):
            continue
        # dpkg's database names a file by the path its package ships (/usr/lib or /lib).
        for candidate in [path, "/usr" + path, os.path.realpath(path)]:
            owner = run(["dpkg", "-S", candidate])
            if owner.returncode == 0:
                break
        if not check(owner.returncode == 0, f"no package owns {path}"):
            continue
        package = owner.stdout.split(":")[0]
        provides = run(["dpkg-query", "-W", "-f=${Provides}", package]).stdout
        packages[package] = {package} | {re.split(r"[ (]", item.strip())[0] for item in provides.split(",") if item.strip()}
    return packages


def main():
    build = os.path.abspath(sys.argv[1])
    with tempfile.TemporaryDirectory() as out:
        done = run(["cpack", "-G", "DEB", "--config", os.path.join(build, "CPackConfig.cmake"), "-B", out],
                   timeout=240)
        check(done.returncode == 0, f"cpack: {done.returncode} {done.stdout[-2000:]} {done.stderr[-2000:]}")
        debs = glob.glob(os.path.join(out, "zen_*.deb"))
        if not check(len(debs) == 1, f"cpack made {debs}"):
            finish("deb_test")
        deb = debs[0]
        check(os.path.basename(deb) == "zen_0.1.0_amd64.deb", f"file name {os.path.basename(deb)}")

        lint = run(["lintian", "--no-cfg", "--fail-on", "error", "--display-info", deb], timeout=240)
        print(lint.stdout)
        errors = [line for line in lint.stdout.splitlines() if line.startswith("E:")]
        check(not errors and lint.returncode == 0, f"lintian: {errors} (exit {lint.returncode}, {lint.stderr})")

        fields = {name: run(["dpkg-deb", "-f", deb, name]).stdout.strip()
                  for name in ["Package", "Version", "Architecture", "Depends", "Section", "Maintainer"]}
        print(fields)
        check(fields["Package"] == "zen" and fields["Version"] == "0.1.0", f"control: {fields}")
        depends = {re.split(r"[ (]", item.strip())[0] for item in fields["Depends"].split(",")}
        check("adduser" in depends, f"Depends lacks adduser: {fields['Depends']}")

        with tempfile.TemporaryDirectory() as tree, tempfile.TemporaryDirectory() as control:
            check(run(["dpkg-deb", "-x", deb, tree]).returncode == 0, "dpkg-deb -x failed")
            check(run(["dpkg-deb", "-e", deb, control]).returncode == 0, "dpkg-deb -e failed")

            zen = os.path.join(tree, "usr", "bin", "zen")
            version = run([zen, "--version"])
            check(version.returncode == 0 and version.stdout.splitlines()[:1] == ["zen 0.1.0"], f"packaged zen --version: {version}")
            linked = linked_packages(zen)
            check({"libc6", "libstdc++6", "liburing2", "libsystemd0", "libwrap0", "libfmt9"} <= set(linked),
                  f"the binary links only {sorted(linked)}")
            missing = sorted(package for package, names in linked.items() if not names & depends)
            check(not missing, f"linked but not in Depends ({fields['Depends']}): {missing}")
            check(run(["file", zen]).stdout.find("not stripped") < 0, "the packaged binary is not stripped")

            for page in MAN_PAGES:
                check(os.path.exists(os.path.join(tree, "usr/share/man/man1", f"{page}.1.gz")), f"{page}.1.gz missing")
            check(os.path.exists(os.path.join(tree, "usr/share/bash-completion/completions/zen")), "no completion")
            for name in ["copyright", "changelog.gz", "examples/inetd.conf", "examples/Dockerfile"]:
                check(os.path.exists(os.path.join(tree, "usr/share/doc/zen", name)), f"usr/share/doc/zen/{name} missing")
            for unit in ["zen.service", "zen-accept@.service"]:
                with open(os.path.join(tree, "usr/lib/systemd/system", unit)) as f:
                    check("ExecStart=/usr/bin/zen serve" in f.read(), f"{unit} does not start /usr/bin/zen")
            check(os.path.exists(os.path.join(tree, "usr/lib/systemd/system/zen.socket")), "no zen.socket")
            check(not os.path.exists(os.path.join(tree, "etc")), "the package ships files in /etc (enabled units?)")
            everything = [os.path.relpath(os.path.join(d, n), tree) for d, _, names in os.walk(tree) for n in names]
            check(not any(path.startswith("usr/local") for path in everything), "files under usr/local")

            scripts = {}
            for name in ["postinst", "prerm", "postrm"]:
                path = os.path.join(control, name)
                if not check(os.path.exists(path), f"no {name}"):
                    continue
                check(os.access(path, os.X_OK), f"{name} is not executable")
                check(run(["sh", "-n", path]).returncode == 0, f"{name} is not valid sh")
                with open(path) as f:
                    scripts[name] = f.read()
            postinst = scripts.get("postinst", "")
            check(re.search(r"adduser --system --group .*zen", postinst, re.S) is not None, "postinst: no adduser --system")
            for script, text in scripts.items():
                check(re.search(r"^\s*[^#]*\b(enable|start)\b", text, re.M) is None, f"{script} enables or starts a unit")
            check(re.search(r'"\$1" = purge.*deluser --system', scripts.get("postrm", ""), re.S) is not None,
                  "postrm: the zen user is not removed on purge")
    finish("deb_test")


if __name__ == "__main__":
    main()
