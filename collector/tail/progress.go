package tail

// Progress receives, from the reader goroutines, the size and read offset of every file the
// input tails, once per poll, and the moment a file is closed for good. It is how per-container
// tail lag reaches the exporter (exporter.Pods implements it) without the exporter reaching
// into the readers. Calls come from several goroutines at once and must not block.
type Progress interface {
	// FileProgress reports one file of a container; dev and ino identify the file. A size
	// below the last one reported for the file is a truncation.
	FileProgress(dev, ino uint64, namespace, pod, container string, size, read int64)
	// FileClosed says the file is closed for good; its unread bytes will not be read.
	FileClosed(dev, ino uint64)
}

// SetProgress sets where per-file progress goes; call it before Run.
func (in *Input) SetProgress(p Progress) { in.progress = p }

// reportProgress tells the progress hook where f stands (called by poll).
func (r *reader) reportProgress(f *file) {
	p := r.in.progress
	if p == nil || f.src == nil {
		return
	}
	k := f.src.Kube()
	if k == nil || k.Pod == "" {
		return
	}
	p.FileProgress(f.id.dev, f.id.ino, k.Namespace, k.Pod, k.Container, f.size, f.readOff)
}

// reportClosed tells the progress hook where f ended and that it is closed for good.
func (r *reader) reportClosed(f *file) {
	if p := r.in.progress; p != nil {
		r.reportProgress(f)
		p.FileClosed(f.id.dev, f.id.ino)
	}
}
