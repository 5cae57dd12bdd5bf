#!/bin/bash
echo "hello from the old layout" > /app/greeting.txt
