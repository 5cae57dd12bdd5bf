#!/bin/sh
echo "deploying myapp"
