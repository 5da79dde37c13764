set terminal pngcairo size 1400,640 font "sans,10"
set output "growth.png"
set datafile missing 'NaN'
set multiplot layout 1,2 title 'topofs against references, 10483 keys and 104803 keys'
set logscale xy
set xrange [6551.88:167685]
set xlabel 'keys in the topology'
set ylabel 'seconds (median of runs)'
set key outside right top vertical font ',8' spacing 0.9
set grid
set format x '%.0s%c'
set title "time (solid: topofs, dashed: references)"
plot 'growth.dat' using 1:2 with linespoints lw 2 dt 2 pt 1 lc rgb '#000000' title 'tmpfs tar', \
     'growth.dat' using 1:3 with linespoints lw 2 dt 2 pt 2 lc rgb '#1f77b4' title 'squashfuse\_ll cold tar', \
     'growth.dat' using 1:4 with linespoints lw 2 dt 2 pt 3 lc rgb '#17becf' title 'squashfuse\_ll warm tar', \
     'growth.dat' using 1:5 with linespoints lw 2 dt 1 pt 4 lc rgb '#d62728' title 'topofs etcd cold tar', \
     'growth.dat' using 1:6 with linespoints lw 2 dt 1 pt 5 lc rgb '#ff7f0e' title 'topofs etcd warm tar', \
     'growth.dat' using 1:7 with linespoints lw 2 dt 1 pt 6 lc rgb '#2ca02c' title 'topofs zk cold tar', \
     'growth.dat' using 1:8 with linespoints lw 2 dt 1 pt 7 lc rgb '#9467bd' title 'topofs zk warm tar', \
     'growth.dat' using 1:9 with linespoints lw 2 dt 2 pt 8 lc rgb '#7f7f7f' title 'etcdctl get --prefix', \
     'growth.dat' using 1:10 with linespoints lw 2 dt 2 pt 9 lc rgb '#8c564b' title 'kazoo sequential dump', \
     'growth.dat' using 1:11 with linespoints lw 2 dt 1 pt 10 lc rgb '#e377c2' title 'topofs etcd restore', \
     'growth.dat' using 1:12 with linespoints lw 2 dt 2 pt 11 lc rgb '#bcbd22' title 'etcd sequential puts', \
     'growth.dat' using 1:13 with linespoints lw 2 dt 1 pt 12 lc rgb '#00008b' title 'topofs zk restore', \
     'growth.dat' using 1:14 with linespoints lw 2 dt 1 pt 13 lc rgb '#006400' title 'topofs etcd restore -o writeback', \
     'growth.dat' using 1:15 with linespoints lw 2 dt 1 pt 1 lc rgb '#000000' title 'topofs zk restore -o writeback', \
     'growth.dat' using 1:16 with linespoints lw 2 dt 2 pt 2 lc rgb '#1f77b4' title 'kazoo sequential creates'
set title 'memory'
set ylabel 'MiB'
plot 'growth.dat' using 1:17 with linespoints lw 2 pt 7 title 'topofs etcd peak RSS', \
     'growth.dat' using 1:18 with linespoints lw 2 pt 9 title 'topofs zk peak RSS', \
     'growth.dat' using 1:19 with linespoints lw 2 dt 2 pt 5 title 'keys + values', \
     'growth.dat' using 1:20 with linespoints lw 1 dt 3 pt 1 title 'target: 3x data + 32 MiB'
unset multiplot
