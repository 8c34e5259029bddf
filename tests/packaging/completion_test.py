#!/usr/bin/env python3
"""The bash completion built for zen, sourced into a real bash and asked as bash asks it
(COMP_WORDS, COMP_CWORD, then the function `complete -p zen` names): subcommands, each
subcommand's options, the eleven --arch names, --log-format's values and file names.
The --arch names must match both the README's eleven and what `zen serve --help` prints now.

Usage: completion_test.py ZEN_BINARY COMPLETION_FILE
"""

import os
import shlex
import sys
import tempfile

from checks import ARCHITECTURES, SUBCOMMANDS, architectures_in_help, check, finish, run

COMPLETION = ""


def complete(line, cwd=None):
    """What completing `line` offers; a trailing space means the cursor is on a new word."""
    words = shlex.split(line) + ([""] if line.endswith(" ") else [])
    script = (f"source {shlex.quote(COMPLETION)}\n"
              "function=$(complete -p zen | sed -n 's/.*-F \\([^ ]*\\).*/\\1/p')\n"
              f"COMP_WORDS=({' '.join(shlex.quote(w) for w in words)})\n"
              f"COMP_CWORD={len(words) - 1}\n"
              "COMP_LINE=\"${COMP_WORDS[*]}\"; COMP_POINT=${#COMP_LINE}\n"
              "\"$function\" zen \"${COMP_WORDS[COMP_CWORD]}\" \"${COMP_WORDS[COMP_CWORD-1]}\"\n"
              "printf '%s\\n' \"${COMPREPLY[@]}\"\n")
    done = run(["bash", "--norc", "--noprofile", "-c", script], timeout=20, cwd=cwd)
    check(done.returncode == 0 and not done.stderr, f"bash for {line!r}: exit {done.returncode}, {done.stderr}")
    return [word for word in done.stdout.splitlines() if word]


def main():
    global COMPLETION
    zen, COMPLETION = (os.path.abspath(path) for path in sys.argv[1:3])

    in_help = architectures_in_help(zen)
    check(sorted(in_help) == sorted(ARCHITECTURES), f"zen serve --help lists {in_help}, the README {ARCHITECTURES}")
    offered = complete("zen serve --arch ")
    check(sorted(offered) == sorted(in_help) and len(offered) == 11,
          f"zen serve --arch <TAB> offers {offered}, zen serve --help lists {in_help}")
    check(complete("zen serve --arch re") == ["reuseport"], "zen serve --arch re<TAB> is not reuseport")
    check(sorted(complete("zen serve -p 1061 --arch p")) == ["per-client", "poll", "prefork"],
          "the --arch value after another option")

    check(sorted(complete("zen ")) == sorted(SUBCOMMANDS), f"zen <TAB> offers {complete('zen ')}")
    check("--version" in complete("zen --"), "zen --<TAB> lacks --version")
    check(complete("zen st") == ["streamer"], "zen st<TAB>")

    serve_options = complete("zen serve --")
    help_text = run([zen, "serve", "--help"]).stdout
    for option in ["--arch", "--port", "--backlog", "--aphorisms", "--max-question", "--workers", "--wait",
                   "--inetd", "--proxy-protocol", "--trusted-proxy", "--user", "--log-format", "--help"]:
        check(option in serve_options, f"zen serve --<TAB> lacks {option}")
        check(option in help_text, f"{option} is not in zen serve --help")
    check(sorted(complete("zen serve --max-")) == ["--max-connections", "--max-pending", "--max-question"],
          f"zen serve --max-<TAB> offers {complete('zen serve --max-')}")
    client_options = complete("zen client --")
    check("--timeout" in client_options and "--arch" not in client_options,
          f"zen client --<TAB> offers {client_options}")
    check("--max-block" in complete("zen blocks --"), "zen blocks --<TAB> lacks --max-block")
    check("--json" in complete("zen bench --"), "zen bench --<TAB> lacks --json")

    check(sorted(complete("zen serve --log-format ")) == ["json", "text"], "zen serve --log-format <TAB>")
    check(complete("zen serve --port ") == [], "a port is free text: nothing offered")
    with tempfile.TemporaryDirectory() as directory:
        for name in ["my-zen.txt", "other.txt"]:
            open(os.path.join(directory, name), "w").close()
        check(complete("zen serve --aphorisms my", cwd=directory) == ["my-zen.txt"], "--aphorisms completes files")
    check("root" in complete("zen serve --user ro"), "--user completes user names")
    check("--inetd-wait" in complete("zen serve --inetd --"), "--inetd is a flag: options follow it")
    check(complete("zen serve --trusted-proxy ") == [], "a CIDR is free text: nothing offered")
    finish("completion_test")


if __name__ == "__main__":
    main()
