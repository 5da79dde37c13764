set terminal pngcairo size 1400,600 font "sans,10"
set output "scale.png"
set datafile missing 'NaN'
set multiplot layout 1,2 title 'topofs from 10k to 1M keys (tests/bench/scale.py)'
set logscale x
set grid
set format x '%.0s%c'
set xlabel 'keys in the topology'
set key inside left top vertical font ',8'
set xrange [6000:1700000]
set title 'time per key (flat: linear growth)'
set ylabel 'µs per key'
set yrange [0:*]
plot 'scale.dat' using 1:2 with linespoints lw 2 title 'etcd cold tar', \
     'scale.dat' using 1:3 with linespoints lw 2 title 'etcd warm tar', \
     'scale.dat' using 1:4 with linespoints lw 2 title 'etcd restore -o writeback', \
     'scale.dat' using 1:5 with linespoints lw 2 title 'zk cold tar', \
     'scale.dat' using 1:6 with linespoints lw 2 title 'zk warm tar', \
     'scale.dat' using 1:7 with linespoints lw 2 title 'zk restore -o writeback'
set title 'peak RSS of the daemon'
set ylabel 'MiB'
set logscale y
set yrange [*:*]
plot 'scale.dat' using 1:8 with linespoints lw 2 title 'etcd peak RSS', \
     'scale.dat' using 1:9 with linespoints lw 2 title 'zk peak RSS', \
     'scale.dat' using 1:10 with lines dt 2 lw 2 lc rgb '#000000' title 'target 3 x data + 32 MiB'
unset multiplot
