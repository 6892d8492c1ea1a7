set terminal pngcairo size 1100,520 noenhanced
set grid
set key outside right
set xlabel 'time (s)'
set xrange [0:40]
do for [i=1:64] { set linetype i lc rgb hsv2rgb(i*0.618034 - floor(i*0.618034), 0.6, 0.85) }
set output '/work/main/bench/out/companion/latency-naive.png'
set title 'naive: p99 latency per second (by due time)'
set ylabel 'ms'
set logscale y
plot '/work/main/bench/out/companion/data/naive-model-audio_lstm.dat' using 1:5 with linespoints pt 7 ps 0.4 title 'audio_lstm', '/work/main/bench/out/companion/data/naive-model-bert_encoder.dat' using 1:5 with linespoints pt 7 ps 0.4 title 'bert_encoder', '/work/main/bench/out/companion/data/naive-model-mobilenet_v3.dat' using 1:5 with linespoints pt 7 ps 0.4 title 'mobilenet_v3', '/work/main/bench/out/companion/data/naive-model-resnet50.dat' using 1:5 with linespoints pt 7 ps 0.4 title 'resnet50'
set output '/work/main/bench/out/companion/throughput-naive.png'
set title 'naive: ok responses per second'
set ylabel 'responses/s'
unset logscale y
plot '/work/main/bench/out/companion/data/naive-model-audio_lstm.dat' using 1:2 with linespoints pt 7 ps 0.4 title 'audio_lstm', '/work/main/bench/out/companion/data/naive-model-bert_encoder.dat' using 1:2 with linespoints pt 7 ps 0.4 title 'bert_encoder', '/work/main/bench/out/companion/data/naive-model-mobilenet_v3.dat' using 1:2 with linespoints pt 7 ps 0.4 title 'mobilenet_v3', '/work/main/bench/out/companion/data/naive-model-resnet50.dat' using 1:2 with linespoints pt 7 ps 0.4 title 'resnet50'
set output '/work/main/bench/out/companion/queue-naive.png'
set title 'naive: queued requests by model (sampled once per second)'
set ylabel 'requests'
unset logscale y
plot '/work/main/bench/out/companion/data/naive-queue-audio_lstm.dat' using 1:2 with steps title 'audio_lstm', '/work/main/bench/out/companion/data/naive-queue-bert_encoder.dat' using 1:2 with steps title 'bert_encoder', '/work/main/bench/out/companion/data/naive-queue-mobilenet_v3.dat' using 1:2 with steps title 'mobilenet_v3', '/work/main/bench/out/companion/data/naive-queue-resnet50.dat' using 1:2 with steps title 'resnet50'
set output '/work/main/bench/out/companion/memory-naive-cpu.png'
set title 'naive: memory on cpu by model (stacked)'
set ylabel 'MiB'
unset logscale y
set style fill solid 0.6 noborder
f = '/work/main/bench/out/companion/data/naive-memory-cpu.dat'
plot for [i=7:4:-1] f using 1:(sum [c=4:i] column(c)) with filledcurves x1 title columnheader(i), f using 1:2 with lines lw 2 lc rgb 'black' title 'total'
set output '/work/main/bench/out/companion/latency-gpuhive.png'
set title 'gpuhive: p99 latency per second (by due time)'
set ylabel 'ms'
set logscale y
plot '/work/main/bench/out/companion/data/gpuhive-model-audio_lstm.dat' using 1:5 with linespoints pt 7 ps 0.4 title 'audio_lstm', '/work/main/bench/out/companion/data/gpuhive-model-bert_encoder.dat' using 1:5 with linespoints pt 7 ps 0.4 title 'bert_encoder', '/work/main/bench/out/companion/data/gpuhive-model-mobilenet_v3.dat' using 1:5 with linespoints pt 7 ps 0.4 title 'mobilenet_v3', '/work/main/bench/out/companion/data/gpuhive-model-resnet50.dat' using 1:5 with linespoints pt 7 ps 0.4 title 'resnet50'
set output '/work/main/bench/out/companion/throughput-gpuhive.png'
set title 'gpuhive: ok responses per second'
set ylabel 'responses/s'
unset logscale y
plot '/work/main/bench/out/companion/data/gpuhive-model-audio_lstm.dat' using 1:2 with linespoints pt 7 ps 0.4 title 'audio_lstm', '/work/main/bench/out/companion/data/gpuhive-model-bert_encoder.dat' using 1:2 with linespoints pt 7 ps 0.4 title 'bert_encoder', '/work/main/bench/out/companion/data/gpuhive-model-mobilenet_v3.dat' using 1:2 with linespoints pt 7 ps 0.4 title 'mobilenet_v3', '/work/main/bench/out/companion/data/gpuhive-model-resnet50.dat' using 1:2 with linespoints pt 7 ps 0.4 title 'resnet50'
set output '/work/main/bench/out/companion/queue-gpuhive.png'
set title 'gpuhive: queued requests by model (sampled once per second)'
set ylabel 'requests'
unset logscale y
plot '/work/main/bench/out/companion/data/gpuhive-queue-audio_lstm.dat' using 1:2 with steps title 'audio_lstm', '/work/main/bench/out/companion/data/gpuhive-queue-bert_encoder.dat' using 1:2 with steps title 'bert_encoder', '/work/main/bench/out/companion/data/gpuhive-queue-mobilenet_v3.dat' using 1:2 with steps title 'mobilenet_v3', '/work/main/bench/out/companion/data/gpuhive-queue-resnet50.dat' using 1:2 with steps title 'resnet50'
set output '/work/main/bench/out/companion/memory-gpuhive-cpu.png'
set title 'gpuhive: memory on cpu by model (stacked)'
set ylabel 'MiB'
unset logscale y
set style fill solid 0.6 noborder
f = '/work/main/bench/out/companion/data/gpuhive-memory-cpu.dat'
plot for [i=7:4:-1] f using 1:(sum [c=4:i] column(c)) with filledcurves x1 title columnheader(i), f using 1:2 with lines lw 2 lc rgb 'black' title 'total', f using 1:3 with lines dt 2 lw 2 lc rgb 'red' title 'budget'
