"""`astro-scim completion bash|zsh|fish`: the shell code that completes commands, flags and choices.

The script asks the program itself (argcomplete: it runs `astro-scim` with _ARGCOMPLETE set, and connector.cli
answers from its parser before doing anything else), so completions always match the installed version.

    eval "$(astro-scim completion bash)"                      # ~/.bashrc
    astro-scim completion zsh > "${fpath[1]}/_astro-scim"      # or eval it in ~/.zshrc
    astro-scim completion fish > ~/.config/fish/completions/astro-scim.fish
"""

from __future__ import annotations

import argparse

from connector import output


def run(args: argparse.Namespace) -> int:
    from argcomplete.shell_integration import shellcode

    output.raw(shellcode(["astro-scim"], shell=args.shell).rstrip("\n"))
    return 0
