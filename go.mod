module tyst

go 1.26.8

require (
	github.com/coder/websocket v1.8.15
	github.com/fernet/fernet-go v0.0.0-20240119011108-303da6aec611
	github.com/gobwas/ws v1.5.0
	github.com/hiddeco/sshsig v0.2.0
	github.com/julienschmidt/httprouter v1.3.0
	github.com/robfig/cron/v3 v3.0.1
	go.etcd.io/bbolt v1.5.0
	golang.org/x/crypto v0.58.0
	golang.org/x/sys v0.49.0
)

require github.com/gobwas/httphead v0.1.0 // indirect
