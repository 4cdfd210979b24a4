"""Times the Shapes generator on one core: 10,000 labelled pairs (5,000 scenes).

taskset -c 0 python benchmarks/shapes_generator.py
"""

from gemini_tf.data import shapes

from results_file import best_of

print(f"make_pairs, 10,000 pairs: {best_of(lambda: shapes.make_pairs(5000, 'train')):.2f} s (best of 3)")
print(f"make_groups, 2,500 images x 4 captions: {best_of(lambda: shapes.make_groups(2500, 'train')):.2f} s")
