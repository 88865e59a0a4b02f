#!/bin/sh
# An ext_auth program for regauth (same contract as cesanta/docker_auth's examples/ext_auth.sh).
#
# stdin: "<user> <password>" (one space, no newline). Exit 0 = allow, 1 = deny, 2 = not my user
# (regauth asks the next authenticator). On exit 0, stdout may carry labels for the ACL.
#
#   ext_auth:
#     command: /etc/regauth/ext_auth.sh
#
# User names never contain a space, so the password is everything after the first one, byte
# for byte. Not `read u p` (docker_auth's example; it drops backslashes and trims spaces) and not
# `IFS= read -r u p` (an empty IFS splits nothing: p is always empty). See docs/hooks.md.
# Write diagnostics to stderr: stdout is parsed.

IFS= read -r line || true
u=${line%% *}
p=${line#* }
[ -n "$p" ] || exit 1

case "$u" in
  builder)
    if [ "$p" = "let-me-build" ]; then
      echo '{"labels": {"group": ["builders"], "level": ["max"]}}'
      exit 0
    fi
    exit 1
    ;;
  viewer)
    [ "$p" = "just-looking" ] && exit 0
    exit 1
    ;;
esac
exit 2
