"""The production ApiClient, built from the executor's connection options.

The executor takes any ``kubernetes.client.ApiClient`` (a simulated world hands it one on the
fake cluster). Against a real cluster, ``api_client_from_config`` builds it as upstream's
``get_kube_client`` does, honouring ``in_cluster``, ``config_file``, ``cluster_context``,
``verify_ssl``, ``ssl_ca_cert``, ``api_client_retry_configuration`` and the TCP keepalive options.
"""

from __future__ import annotations

import socket

from kubernetes import client
from kubernetes import config as kube_config
from urllib3.connection import HTTPConnection
from urllib3.util.retry import Retry

from .config import ConfigError, ExecutorConfig


def api_client_from_config(config: ExecutorConfig) -> client.ApiClient:
    """An ApiClient for the cluster the options name; raises ConfigError when it cannot be reached."""
    configuration = client.Configuration()
    try:
        if config.in_cluster:
            kube_config.load_incluster_config(client_configuration=configuration)
        else:
            kube_config.load_kube_config(config_file=config.config_file, context=config.cluster_context,
                                         client_configuration=configuration)
    except kube_config.ConfigException as exc:
        where = "in_cluster = true (no service account here?)" if config.in_cluster else \
            f"config_file = {config.config_file!r}, cluster_context = {config.cluster_context!r}"
        raise ConfigError(f"cannot load the Kubernetes configuration ({where}): {exc}\n"
                          f"    fix:      set in_cluster = false and point config_file at a kubeconfig") from exc
    if not config.verify_ssl:
        configuration.verify_ssl = False
    if config.ssl_ca_cert:
        configuration.ssl_ca_cert = config.ssl_ca_cert
    if config.api_client_retry_configuration:
        configuration.retries = retry_from(config.api_client_retry_configuration)
    api_client = client.ApiClient(configuration)
    if config.enable_tcp_keepalive:  # both client generations keep their urllib3 pool here
        api_client.rest_client.pool_manager.connection_pool_kw["socket_options"] = keepalive_options(config)
    return api_client


def retry_from(options: dict) -> Retry:
    try:
        return Retry(**options)
    except TypeError as exc:
        raise ConfigError(f"api_client_retry_configuration = {options!r}\n    problem:  {exc}\n"
                          f"    expected: urllib3 Retry keyword arguments, e.g. {{\"total\": 3, "
                          f"\"backoff_factor\": 0.5}}") from exc


def keepalive_options(config: ExecutorConfig) -> list[tuple[int, int, int]]:
    """urllib3 socket options: keepalive on, with tcp_keep_idle / _intvl / _cnt where the OS has them."""
    options = list(HTTPConnection.default_socket_options) + [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    for name, value in (("TCP_KEEPIDLE", config.tcp_keep_idle), ("TCP_KEEPINTVL", config.tcp_keep_intvl),
                        ("TCP_KEEPCNT", config.tcp_keep_cnt)):
        if hasattr(socket, name):
            options.append((socket.IPPROTO_TCP, getattr(socket, name), value))
    return options
