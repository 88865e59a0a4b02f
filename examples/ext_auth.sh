#!/bin/sh
# An ext_auth program for regauth (same contract as cesanta/docker_auth's examples/ext_auth.sh).
#
# stdin: "<user> <password>" (one space, no newline). Exit 0 = allow, 1 = deny, 2 = not my user
# (regauth asks the next authenticator). On exit 0, stdout may carry labels for the ACL.
#
#   ext_auth:
#     command: /etc/regauth/ext_auth.sh
#
# `read -r` keeps backslashes in passwords; docker_auth's example uses plain `read u p`, which
# regauth runs unchanged too. Write diagnostics to stderr: stdout is parsed.

read -r u p

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
