"""Minimal Django settings for the jobwire example (no database needed)."""

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "jobwire-example-not-secret")
DEBUG = True
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "shop.urls"
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True

# Where jobwire's Redis is; one jobwire.Client is created from it per process (shop/jobs.py).
REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
