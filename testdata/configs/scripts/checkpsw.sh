#!/bin/sh
# Accepts every user; for configuration tests only.
exit 0
