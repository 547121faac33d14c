"""A real RTSP server for the tests: GStreamer's gst-rtsp-server serving a video file.

Run with the system Python (Debian's python3-gi and gir1.2-gst-rtsp-server-1.0):
    /usr/bin/python3 rtsp_server.py PORT FILE [--loop]
Prints "ready" once listening. Each client gets the file from its start, in real time.
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    port, path = sys.argv[1], sys.argv[2]
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    demux = "matroskademux" if path.endswith(".mkv") else "qtdemux"
    factory.set_launch(f"( filesrc location={path} ! {demux} ! h264parse config-interval=-1 ! "
                       "rtph264pay name=pay0 pt=96 config-interval=-1 )")
    factory.set_shared(False)
    server.get_mount_points().add_factory("/cam", factory)
    if server.attach(None) == 0:
        print("cannot listen", flush=True)
        sys.exit(1)
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
