#!/bin/sh
rm -rf /app/www/cache/*
