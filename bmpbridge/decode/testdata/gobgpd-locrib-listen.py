import socket,sys,time
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR,1); s.bind(("127.0.0.1",11019)); s.listen(1)
c,_=s.accept(); c.settimeout(20)
end=time.time()+20
try:
  while time.time()<end:
    d=c.recv(65536)
    if not d: break
except Exception: pass
