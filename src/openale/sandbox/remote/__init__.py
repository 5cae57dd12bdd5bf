"""The remote SDK: the sandbox API of a control plane (``ale serve``), blocking and asyncio.

``RemoteSandbox`` (``sandbox``) and ``AsyncRemoteSandbox`` (``aio``) are two
faces of one core: the wire schemas shared with the server (``wire``), the
requests (``calls``), the operations that send them and parse the answers
(``ops``), errors and streams (``core``), and the two transports (``http``,
``ws``). ``Sandbox.create(..., server=URL)`` returns a ``RemoteSandbox``.
"""

from openale.sandbox.remote.aio import AsyncRemoteSandbox
from openale.sandbox.remote.sandbox import RemoteSandbox

__all__ = ["AsyncRemoteSandbox", "RemoteSandbox"]
