"""Realtime: Socket.IO rooms, the payload of every event the server sends, publishing after
commit, and the Socket.IO handlers (a thin edge, like ``api/``).
"""
