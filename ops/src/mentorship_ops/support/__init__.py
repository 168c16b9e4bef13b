"""Helpers shared by the operator CLI, the tests and the benchmarks: a local SMTP sink, a launcher
that runs a service as its own process until it answers /ready, a plain topic reader, free ports
and plain-text tables. Here (not under tests/) because the CLI's demo needs them too."""

from .ports import free_port
from .processes import ServiceProcess, service_env
from .smtp import SmtpSink
from .tables import print_table, rich_table
from .topics import TopicReader, read_topic

__all__ = [
    "ServiceProcess",
    "SmtpSink",
    "TopicReader",
    "free_port",
    "print_table",
    "read_topic",
    "rich_table",
    "service_env",
]
