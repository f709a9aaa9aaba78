"""Developer / embedded default: DEBUG on, everything else from base."""

from xixian_ems.settings.base import *
from xixian_ems.settings.base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
