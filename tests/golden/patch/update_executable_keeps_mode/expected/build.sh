#!/bin/sh
make -j2
