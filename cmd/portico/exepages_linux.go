package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// madvDontneed is MADV_DONTNEED.
const madvDontneed = 4

// dropExePages lets go of the executable's read-only pages that this
// process has touched (its code and read-only data, mapped private from
// the file and never written): start-up runs every linked package's init
// (the DNS providers' SDKs among them), which touches tens of megabytes
// that are never needed again. The kernel unmaps them from this process
// only; they stay in the page cache, and a page that is used again is
// mapped back on its next access, from the same file. Writable mappings
// are never touched. It returns the bytes advised.
func dropExePages() (int64, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0, fmt.Errorf("executable pages: %w", err)
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, fmt.Errorf("executable pages: %w", err)
	}
	defer f.Close()
	var total int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// start-end perms offset dev inode path
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[5] != exe || (fields[1] != "r--p" && fields[1] != "r-xp") {
			continue
		}
		start, end, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		lo, err1 := strconv.ParseUint(start, 16, 64)
		hi, err2 := strconv.ParseUint(end, 16, 64)
		if err1 != nil || err2 != nil || hi <= lo {
			continue
		}
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, uintptr(lo), uintptr(hi-lo), madvDontneed); errno != 0 {
			return total, fmt.Errorf("executable pages %s: madvise: %w", fields[0], errno)
		}
		total += int64(hi - lo)
	}
	if err := sc.Err(); err != nil {
		return total, fmt.Errorf("executable pages: %w", err)
	}
	return total, nil
}
